"""sweeps-analyze end to end: a real sweep into a temporary store, then the real analyze CLI,
checked by reading the store back and opening every image it wrote."""

from __future__ import annotations

import math

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from conftest import run_cli

SYMPTOMS = {"healthy", "diverged", "stalled", "oscillating", "overfitting"}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A small real sweep: linear and poly, a stable and an unstable lr, both zero_grad settings."""
    tmp = tmp_path_factory.mktemp("swept")
    out = tmp / "out"
    run_cli(["-m", "model=linear,poly", "data=few", "optimizer.lr=0.1,1.5", "data.noise=0,2.0",
             "train.zero_grad=true,false", "train.epochs=150", "sweep.name=mini",
             f"paths.output_dir={out}"], tmp)
    return tmp, out, f"sqlite:///{out / 'mlflow.db'}"


def test_analyze_labels_tags_and_plots(swept):
    tmp, out, uri = swept
    proc = run_cli(["--tracking-uri", uri, "--relabel", "--output-root", str(out), "--gif"], tmp,
                   module="sweeps.analyze")
    assert "experiment 'mini': 16 runs labelled" in proc.stdout
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("mini")
    runs = c.search_runs([exp.experiment_id], max_results=100)
    kids = [r for r in runs if r.data.tags.get("sweeps.role") == "child"]
    assert len(kids) == 16
    assert all(r.data.tags["symptom"] in SYMPTOMS for r in kids)
    assert all(r.data.tags["mlflow.note.content"] for r in kids)
    # every label says how sure it is, in a tag to filter on and in the note
    assert {r.data.tags["symptom_confidence"] for r in kids} <= {"clear", "borderline"}
    assert all(f"Confidence: {r.data.tags['symptom_confidence']}" in r.data.tags["mlflow.note.content"]
               for r in kids)
    # lr 1.5 with SGD on inputs in [-1, 1] is past the stability limit: it must be diverged
    diverged = [r for r in kids if r.data.params["optimizer.lr"] == "1.5" and r.data.params["train.zero_grad"] == "True"]
    assert diverged and all(r.data.tags["symptom"] == "diverged" for r in diverged)

    analysis = out / "mini" / "analysis"
    pngs = sorted(analysis.glob("*.png"))
    names = {p.name for p in pngs}
    assert {"loss_curves_linear.png", "loss_curves_poly.png", "symptom_map_linear.png",
            "symptom_map_poly.png", "fitted_line.png"} <= names
    for p in pngs:
        with Image.open(p) as im:
            im.verify()
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
    with Image.open(analysis / "fitted_line.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames > 1
    csv = (analysis / "labels.csv").read_text().splitlines()
    assert len(csv) == 17 and csv[0].startswith("run_id,name,status")
    parent = [r for r in runs if r.data.tags.get("sweeps.role") == "parent"][0]
    logged = {a.path for a in c.list_artifacts(parent.info.run_id, "analysis")}
    assert "analysis/symptom_map_linear.png" in logged and "analysis/labels.csv" in logged


def test_analyze_foreign_experiment_with_custom_keys(tmp_path):
    """Any MLflow experiment: custom metric keys, no sweeps tags, one run without the losses."""
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    c = MlflowClient(uri)
    exp = c.create_experiment("theirs", artifact_location=(tmp_path / "art").as_uri())
    from mlflow.entities import Metric

    def make(name, train, val):
        run = c.create_run(exp, run_name=name)
        ms = [Metric("loss", v, 0, i) for i, v in enumerate(train)]
        ms += [Metric("eval_loss", v, 0, i) for i, v in enumerate(val)]
        if ms:
            c.log_batch(run.info.run_id, metrics=ms)
        c.set_terminated(run.info.run_id)
        return run.info.run_id

    good = make("good", [1.0 * 0.9**i + 0.01 for i in range(100)], [1.1 * 0.9**i + 0.02 for i in range(100)])
    nan = make("blows-up", [1.0, 2.0, 8.0, 64.0, float("nan")], [1.0, 2.5, 9.0, 70.0, float("inf")])
    make("no-metrics", [], [])
    proc = run_cli(["--tracking-uri", uri, "--experiment", "theirs", "--train-metric", "loss",
                    "--val-metric", "eval_loss", "--output-root", str(tmp_path / "out")], tmp_path,
                   module="sweeps.analyze")
    assert "skipped 1 run(s) without the loss metrics: no-metrics" in proc.stdout
    assert c.get_run(good).data.tags["symptom"] == "healthy"
    assert c.get_run(nan).data.tags["symptom"] == "diverged"
    assert (tmp_path / "out" / "theirs" / "analysis" / "labels.csv").is_file()


def test_analyze_bad_input_is_one_line(tmp_path):
    proc = run_cli(["--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}"], tmp_path,
                   module="sweeps.analyze", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: --tracking-uri=")
    assert not (tmp_path / "none.db").exists()


@pytest.mark.slow
def test_verify_fixes_reruns_unhealthy_runs(swept):
    tmp, out, uri = swept
    proc = run_cli(["--tracking-uri", uri, "--experiment", "mini", "--no-plots", "--verify-fixes",
                    "--output-root", str(out)], tmp, module="sweeps.analyze")
    assert "verify-fixes:" in proc.stdout
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("mini")
    runs = c.search_runs([exp.experiment_id], max_results=200)
    fixes = [r for r in runs if "sweeps.fixes" in r.data.tags]
    originals = {r.info.run_id: r for r in runs if r.data.tags.get("sweeps.role") == "child" and "sweeps.fixes" not in r.data.tags}
    unhealthy = [r for r in originals.values() if r.data.tags["symptom"] != "healthy"]
    assert len(fixes) == len(unhealthy) > 0
    compound = 0
    for f in fixes:
        orig = originals[f.data.tags["sweeps.fixes"]]
        # the fix is every override of the original's fix tag, applied together
        assert f.data.tags["sweeps.fix"] == orig.data.tags["fix"] != ""
        overrides = f.data.tags["sweeps.fix"].split()
        compound += len(overrides) > 1
        for override in overrides:
            key, value = override.split("=", 1)
            assert f.data.params[key].lower() == value.lower() or math.isclose(float(f.data.params[key]), float(value))
        assert f.info.status == "FINISHED" and f.data.tags["symptom"] in SYMPTOMS
    # zero_grad off with lr 1.5 (past plain descent's limit on these inputs): two faults
    assert compound > 0
    healed = sum(f.data.tags["symptom"] == "healthy" for f in fixes)
    assert f"{healed:>4}/{len(fixes):<4} became healthy" in proc.stdout
    # the sweep's parent run charts the share healed, as counted from the reruns' own labels
    parent = next(r for r in runs if r.data.tags.get("sweeps.role") == "parent")
    metrics = c.get_run(parent.info.run_id).data.metrics
    assert metrics["fixes/healed_share"] == pytest.approx(healed / len(fixes))
    assert metrics["fixes/attempted"] == len(fixes)


def test_analyze_rounds_bad_value_is_one_line(tmp_path):
    proc = run_cli(["--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}", "--verify-fixes",
                    "--rounds", "3"], tmp_path, module="sweeps.analyze", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --rounds=3: must be 1 or 2"


@pytest.mark.slow
def test_verify_fixes_second_round(swept):
    """--rounds 2: a rerun the first fix did not heal gets its own diagnosis's fix on top."""
    tmp, out, uri = swept
    proc = run_cli(["--tracking-uri", uri, "--experiment", "mini", "--no-plots", "--verify-fixes",
                    "--rounds", "2", "--output-root", str(out)], tmp, module="sweeps.analyze")
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("mini")
    runs = c.search_runs([exp.experiment_id], max_results=500)
    parents = [r for r in runs if r.data.tags.get("sweeps.role") == "verify"]
    latest = max(parents, key=lambda r: r.info.start_time).info.run_id
    mine = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == latest]
    first = {r.data.tags["sweeps.fixes"]: r for r in mine if r.data.tags["sweeps.fix_round"] == "1"}
    second = [r for r in mine if r.data.tags["sweeps.fix_round"] == "2"]
    for r in second:  # only runs the first round left unhealthy, with the rerun's own fix ...
        before = first[r.data.tags["sweeps.fixes"]]
        assert before.data.tags["symptom"] != "healthy"
        own, applied = before.data.tags["fix"].split(), r.data.tags["sweeps.fix"].split()
        assert own
        if applied != own:  # ... or, where that lr went back past the run's own, one between
            lr0 = float(c.get_run(r.data.tags["sweeps.fixes"]).data.params["optimizer.lr"])
            lr1 = float(before.data.params["optimizer.lr"])
            lr2 = float(r.data.params["optimizer.lr"])
            assert min(lr0, lr1) < lr2 < max(lr0, lr1)
            assert [o for o in applied if not o.startswith("optimizer.lr=")] \
                == [o for o in own if not o.startswith("optimizer.lr=")]
    healed1 = sum(r.data.tags["symptom"] == "healthy" for r in first.values())
    healed2 = sum(r.data.tags["symptom"] == "healthy" for r in second)
    assert f"{healed1:>4}/{len(first):<4} became healthy in round 1" in proc.stdout
    if second:
        assert f"{healed1 + healed2:>4}/{len(first):<4} after round 2" in proc.stdout


def test_the_gif_is_drawn_for_the_worked_example_or_when_asked(swept, tmp_path):
    """The fitted line's animation costs ~1 s: sweeps-analyze draws it for the explainer's
    worked example (SGD at lr 0.03) or with --gif, else only its picture."""
    tmp, out, uri = swept  # lr 0.1 and 1.5: not the worked example
    run_cli(["--tracking-uri", uri, "--relabel", "--output-root", str(tmp_path / "a")], tmp,
            module="sweeps.analyze")
    analysis = tmp_path / "a" / "mini" / "analysis"
    assert (analysis / "fitted_line.png").is_file() and not (analysis / "fitted_line.gif").exists()
    single = tmp_path / "single"
    run_cli([f"paths.output_dir={single}"], tmp_path)  # the default run: SGD at lr 0.03
    run_cli(["--output-root", str(single), "--experiment", "adhoc"], tmp_path, module="sweeps.analyze")
    with Image.open(single / "adhoc" / "analysis" / "fitted_line.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames > 1
