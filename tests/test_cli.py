"""The real ``sweeps`` CLI in a subprocess against a SQLite store in tmp_path, read back with
MLflow's client."""

from __future__ import annotations

import math
import re
from collections import Counter
import sqlite3
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

GRID = ["-m", "optimizer=sgd,adam", "optimizer.lr=0.03,5.0", "train.zero_grad=true,false", "train.epochs=60"]


def _runs(uri: str, experiment: str):
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r}"
    return c, c.search_runs([exp.experiment_id], max_results=1000)


def test_multirun_records_one_child_per_grid_point(cli):
    proc = cli(*GRID, "sweep.plots=true", "sweep.wait_for_plots=true")
    c, runs = _runs(cli.uri, "adhoc")
    parents = [r for r in runs if r.data.tags.get("sweeps.role") == "parent"]
    kids = [r for r in runs if r.data.tags.get("sweeps.role") == "child"]
    assert len(parents) == 1 and len(kids) == 8
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in kids} == {parent.info.run_id}

    seen = set()
    for r in kids:
        p = r.data.params
        seen.add((p["optimizer"], float(p["optimizer.lr"]), p["train.zero_grad"]))
        assert p["optimizer.name"] == p["optimizer"]
        assert r.info.status == "FINISHED"
        for tag in ("symptom", "cause", "fix", "mlflow.note.content", "sweeps.config_hash", "mlflow.runName"):
            assert tag in r.data.tags, tag
        assert r.info.run_name.startswith(p["optimizer"] + " lr=")
        hist = {k: c.get_metric_history(r.info.run_id, k) for k in ("train_loss", "val_loss", "grad_norm", "w", "b")}
        steps = [m.step for m in hist["train_loss"]]
        n = len(steps)
        assert steps == list(range(n))
        assert all(len(v) == n for v in hist.values())
        if n < 60:  # stopped early: only at a non-finite loss, which is recorded
            last = (hist["train_loss"][-1].value, hist["val_loss"][-1].value)
            assert r.data.tags["sweeps.stop_reason"] == "non_finite"
            assert any(math.isnan(v) or abs(v) > 1e300 for v in last)
        else:
            assert r.data.tags["sweeps.stop_reason"] == "completed"
    assert seen == {(o, lr, zg) for o in ("sgd", "adam") for lr in (0.03, 5.0) for zg in ("True", "False")}
    assert len({r.data.tags["sweeps.config_hash"] for r in kids}) == 8
    # artifacts: the resolved config and Hydra's files
    names = {a.path for a in c.list_artifacts(kids[0].info.run_id)}
    assert {"config.yaml", "hydra"} <= names
    assert "8 jobs" in proc.stdout and "mlflow ui --backend-store-uri sqlite:///" in proc.stdout
    # the summary table: a row per symptom with an example run, the best healthy run, the plots
    lines = proc.stdout.splitlines()
    table = lines[lines.index("  symptom       runs  example") + 1:]
    rows = {ln.split()[0]: ln for ln in table if ln.startswith("  ") and ln.split()[0] in
            ("healthy", "diverged", "stalled", "oscillating", "overfitting")}
    labels = Counter(r.data.tags["symptom"] for r in kids)
    assert {k: int(v.split()[1]) for k, v in rows.items()} == dict(labels)
    assert "best healthy run: " in proc.stdout
    plot_dir = cli.store.parent / "adhoc" / "analysis"
    assert f"plots: {plot_dir}" in proc.stdout
    assert (plot_dir / "symptom_map_linear.png").is_file()
    assert (plot_dir / "fitted_line.png").is_file()  # the worked example: sgd at lr 0.03, healthy
    assert "analysis/symptom_map_linear.png" in {a.path for a in c.list_artifacts(parent.info.run_id, "analysis")}
    # progress, as plain lines when stderr is not a terminal
    progress = [ln for ln in proc.stderr.splitlines() if ln.startswith("progress: ")]
    assert progress, proc.stderr
    done = [int(re.match(r"progress: (\d+)/8 done, \d+ failed, \d+ skipped", ln).group(1)) for ln in progress]
    assert done == sorted(done) and all(1 <= d <= 8 for d in done)


def test_single_run_and_store_location(cli):
    proc = cli("train.epochs=5")
    c, runs = _runs(cli.uri, "adhoc")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["sweeps.role"] == "single"
    assert f"mlflow ui --backend-store-uri {cli.uri}" in proc.stdout


INJECT = """
import sweeps.app as app
real = app.label  # the labeller: both launchers call it for every run they record
def failing(cfg, history):
    if cfg["optimizer"]["lr"] == 0.5:
        raise RuntimeError("injected failure at lr=0.5\\nsecond line")
    return real(cfg, history)
app.label = failing
from sweeps.cli import main
main()
"""


@pytest.mark.parametrize("launcher", ["vectorized", "basic"])
def test_failed_job_is_recorded_and_sweep_goes_on(tmp_path, launcher):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", INJECT, "-m", "optimizer.lr=0.03,0.5,0.1", "train.epochs=5",
         f"hydra/launcher={launcher}", f"paths.output_dir={out}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "3 jobs" in proc.stdout and "2 finished, 1 failed" in proc.stdout
    assert "RuntimeError: injected failure at lr=0.5" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "error: 1 job(s) failed; see the summary above"
    c, runs = _runs(f"sqlite:///{out / 'mlflow.db'}", "adhoc")
    by_lr = {r.data.params.get("optimizer.lr"): r for r in runs if r.data.tags["sweeps.role"] == "child"}
    assert by_lr["0.5"].info.status == "FAILED"
    assert by_lr["0.5"].data.tags["sweeps.error"] == "RuntimeError: injected failure at lr=0.5"
    assert "traceback.txt" in {a.path.split("/")[-1] for a in c.list_artifacts(by_lr["0.5"].info.run_id, "error")}
    assert by_lr["0.03"].info.status == by_lr["0.1"].info.status == "FINISHED"
    parent = [r for r in runs if r.data.tags["sweeps.role"] == "parent"]
    assert [p.info.status for p in parent] == ["FAILED"]
    _no_running(out / "mlflow.db")


def _no_running(store) -> None:
    if store.exists():
        with sqlite3.connect(store) as db:
            rows = db.execute("select count(*) from runs where status = 'RUNNING'").fetchone()
        assert rows[0] == 0


@pytest.mark.parametrize("args, expected", [
    (["optimizer=nesterov"], "optimizer='nesterov': no such optimizer config; allowed: adam, momentum, rmsprop, sgd"),
    (["optimizer.lr=0"], "optimizer.lr=0.0: must be a finite number > 0"),
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1: must be a finite number > 0"),
    (["optimizer.lr=fast"], "optimizer.lr='fast': must be a finite number > 0"),
    (["train.epochs=0"], "train.epochs=0: must be an integer >= 1"),
    (["data.noise=-1"], "data.noise=-1.0: must be a finite number >= 0"),
    (["train.device=cuda"], "train.device='cuda': CUDA is not available here"),
    (["train.epohcs=3"], "train.epohcs: unknown config key"),
    (["-m", "optimizer.lr=0.1,-1"], "optimizer.lr=-1: must be a finite number > 0"),
    (["-m", "optimizer=sgd,nesterov"], "optimizer='nesterov': no such optimizer config"),
])
def test_bad_input_is_one_line_and_writes_nothing_running(cli, args, expected):
    import torch

    if "cuda" in " ".join(args) and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    extra = [] if any(a.startswith("train.epochs") for a in args) else ["train.epochs=3"]
    proc = cli(*args, *extra, check=False)
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert expected in errors[0]
    assert "Traceback" not in proc.stderr
    _no_running(cli.store)
    if cli.store.exists() and "-m" in args:
        c, runs = _runs(cli.uri, "adhoc")
        assert runs == []


def test_unwritable_tracking_dir(cli, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    uri = f"sqlite:///{blocker}/sub/mlflow.db"
    proc = cli(f"tracking.uri={uri}", "train.epochs=3", check=False)
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "tracking.uri=" in errors[0] and "cannot create directory" in errors[0]
    assert not (blocker.parent / "out" / "mlflow.db").exists()


def _one_error(proc) -> str:
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(errors) == 1 and errors[0].startswith("error: "), proc.stderr
    return errors[0]


def test_zero_point_grid_is_bad_input(cli):
    err = _one_error(cli("-m", "optimizer.lr=range(1,1)", check=False))
    assert "optimizer.lr=range(1,1)" in err and "zero points" in err
    assert not cli.store.exists()


def test_store_that_is_not_sqlite_or_not_mlflow(cli, tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("my notes")
    err = _one_error(cli(f"tracking.uri=sqlite:///{text}", "train.epochs=3", check=False))
    assert "is not an SQLite database" in err
    assert text.read_text() == "my notes"
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("create table mine (x)")
    err = _one_error(cli(f"tracking.uri=sqlite:///{other}", "train.epochs=3", check=False))
    assert "not an MLflow store" in err
    with sqlite3.connect(other) as db:  # untouched: MLflow added no tables to it
        assert [r[0] for r in db.execute("select name from sqlite_master where type='table'")] == ["mine"]


def test_store_locked_by_another_program(cli):
    cli("train.epochs=3")  # an MLflow store exists
    holder = sqlite3.connect(cli.store, timeout=1)
    holder.execute("begin exclusive")
    try:
        err = _one_error(cli("train.epochs=3", check=False))
    finally:
        holder.rollback()
        holder.close()
    assert "is locked by another program" in err
    _no_running(cli.store)


def test_help_is_the_tools_own_page(cli, tmp_path):
    """`sweeps --help` says what the tool does and lists the real options of each group (no
    schemas), the presets, the four axes' override keys and how to open the results."""
    from conftest import run_cli

    proc = run_cli(["--help"], tmp_path)
    text = proc.stdout
    assert text.startswith("== sweeps ==") and "powered by Hydra" not in text
    assert "labelled with" in text and "the override that fixes it" in text
    groups = dict(re.findall(r"^(\w+): (.+)$", text, flags=re.M))
    assert groups["optimizer"] == "adam, momentum, rmsprop, sgd"
    assert groups["model"] == "linear, mlp, poly" and groups["data"] == "few, line"
    assert groups["sweep"] == "diagnostic, smoke"
    assert "_schema" not in text
    for key in ("optimizer.lr=", "optimizer=", "data.noise=", "train.zero_grad="):
        assert re.search(rf"^  {re.escape(key)}", text, flags=re.M), key
    assert "sweep=diagnostic" in text and "sweep=smoke" in text
    assert "mlflow ui --backend-store-uri sqlite:///$PWD/outputs/mlflow.db" in text
    assert "#/experiments/<id>/runs?workflowType=machine_learning" in text
    assert not (tmp_path / "outputs").exists()  # help runs nothing, writes nothing


def test_smoke_sweep_leads_to_its_runs_in_the_ui(cli):
    """The summary prints the runs URL of the Model training view; the parent run carries the
    runs per symptom as metrics and the summary as its markdown description; the experiment
    describes itself and where to look."""
    proc = cli("sweep=smoke")
    c, runs = _runs(cli.uri, "smoke")
    exp = c.get_experiment_by_name("smoke")
    url = f"http://127.0.0.1:5000/#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning"
    assert f"  browse: mlflow ui --backend-store-uri {cli.uri}\n  then open: {url}" in proc.stdout
    parent = next(r for r in runs if r.data.tags.get("sweeps.role") == "parent")
    kids = [r for r in runs if r.data.tags.get("sweeps.role") == "child"]
    counts = Counter(r.data.tags["symptom"] for r in kids)
    m = parent.data.metrics
    for symptom in ("healthy", "diverged", "stalled", "oscillating", "overfitting"):
        assert m[f"runs/{symptom}"] == counts.get(symptom, 0), symptom
    assert m["runs/failed"] == 0
    best = min(r.data.metrics["val_loss"] for r in kids if r.data.tags["symptom"] == "healthy")
    assert m["best_val_loss"] == pytest.approx(best)
    note = parent.data.tags["mlflow.note.content"]
    assert "| symptom | runs | example |" in note
    for symptom, n in counts.items():
        assert f"| `{symptom}` | {n} |" in note
    described = exp.tags["mlflow.note.content"]
    assert f"(#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning)" in described
    assert "`optimizer.lr=0.03,1.5`" in described and "`train.zero_grad=true,false`" in described
    assert "tags.symptom = 'diverged'" in described and "tags.symptom" in described

    # sweeps-analyze prints the same way in
    from conftest import run_cli

    analysed = run_cli(["--tracking-uri", cli.uri, "--experiment", "smoke", "--no-plots",
                        "--output-root", str(cli.store.parent)], cli.store.parent.parent, module="sweeps.analyze")
    assert f"  then open: {url}" in analysed.stdout

    # A description someone wrote in the UI stays; the tool's own is kept up to date.
    c.set_experiment_tag(exp.experiment_id, "mlflow.note.content", "my notes")
    cli("sweep=smoke", "sweep.resume=false")
    assert c.get_experiment(exp.experiment_id).tags["mlflow.note.content"] == "my notes"
