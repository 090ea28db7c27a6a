"""The bulk path is an optimisation, MLflow's public API the reference: the same sweep (and the
same relabelling, which writes tags afterwards) recorded both ways leaves every table of MLflow's
schema the same, row by row, once run ids, timestamps and the output folders are normalised; so
does sweeps-analyze on someone else's experiment (tags, descriptions, the run holding its files,
the files), without importing MLflow in bulk. MLflow's own client reads both stores the same."""

from __future__ import annotations

import math
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import run_cli

pytestmark = pytest.mark.slow

SWEEP = ["-m", "optimizer=sgd,adam", "optimizer.lr=0.01,1.0", "train.zero_grad=true,false",
         "train.epochs=60", "sweep.plots=false"]
TIME_COLUMNS = re.compile(r"(^|_)(time|timestamp|creation_time|last_update_time|start_time|end_time)$")
VOLATILE_TAGS = {"sweeps.pid"}  # the process that wrote the run
WALL_TIME = re.compile(r"\b\d+(?:\.\d+)? s\b")  # "8 jobs in 0.6 s", "a batched program of 0.04 s"


def _record(root: Path, plain: bool) -> Path:
    env = {"SWEEPS_PLAIN_LOGGING": "1"} if plain else {}
    sweep = run_cli([*SWEEP, f"paths.output_dir={root}", f"hydra.sweep.dir={root}/sweep"], root.parent,
                    env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in sweep.stderr.splitlines()}
    if not plain:  # the whole sweep (experiment, parent run, runs, end) without MLflow's code
        assert not imported & {"mlflow", "sqlalchemy", "alembic"}, imported & {"mlflow", "sqlalchemy"}
    else:
        assert "mlflow" in imported
    run_cli(["--output-root", str(root), "--relabel", "--no-plots", "--show", "0"], root.parent,
            env=env, module="sweeps.analyze")
    return root / "mlflow.db"


def _tables(store: Path, root: Path) -> dict[str, list[tuple]]:
    """Every table's rows, sorted, with run ids replaced by run names, time columns blanked and
    the output folder written as <root>."""
    db = sqlite3.connect(store)
    try:
        ids = _names(db)
        out = {}
        for (table,) in db.execute("select name from sqlite_master where type = 'table'"):
            cursor = db.execute(f'select * from "{table}"')
            columns = [c[0] for c in cursor.description]
            rows = []
            for row in cursor.fetchall():
                values = dict(zip(columns, row))
                if values.get("key") in VOLATILE_TAGS:
                    values["value"] = "<volatile>"
                for col, v in values.items():
                    if TIME_COLUMNS.search(col) and isinstance(v, (int, float)):
                        values[col] = "<time>"
                    elif isinstance(v, str):
                        values[col] = _text(v, ids, root)
                rows.append(tuple(sorted(values.items(), key=lambda kv: kv[0])))
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        db.close()


def _names(db: sqlite3.Connection) -> dict[str, str]:
    """Run id -> name, the second and later runs of a name (an analysis run per analysis of a
    foreign experiment) told apart by their order of start."""
    names: dict[str, str] = {}
    seen: dict[str, int] = {}
    for run_id, name in db.execute("select run_uuid, name from runs order by start_time, end_time"):
        seen[name] = seen.get(name, 0) + 1
        names[run_id] = name if seen[name] == 1 else f"{name} #{seen[name]}"
    return names


def _text(v: str, ids: dict[str, str], root: Path) -> str:
    for run_id, name in ids.items():
        v = v.replace(run_id, f"<run {name}>")
    v = v.replace(str(root), "<root>").replace(str(root.parent), "<cwd>")
    return WALL_TIME.sub("<seconds> s", v)


def _seen_by_mlflow(root: Path) -> dict[str, dict]:
    """What MLflow's own client reads of every run (search_runs, get_metric_history,
    list_artifacts), by run name, normalised as ``_tables`` does; each run checked to be
    finished and active, ended no earlier than it started."""
    c = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    runs = [r for e in c.search_experiments() for r in c.search_runs([e.experiment_id], max_results=1000)]
    with closing(sqlite3.connect(root / "mlflow.db")) as db:
        ids = _names(db)
    seen = {}

    def listing(run_id: str, path: str = "") -> list[tuple[str, bool, int]]:
        out = []
        for f in c.list_artifacts(run_id, path or None):
            out += listing(run_id, f.path) if f.is_dir else [(f.path, f.is_dir, f.file_size > 0)]
        return out

    for r in runs:
        info = r.info
        assert info.status == "FINISHED" and info.lifecycle_stage == "active", info
        assert info.start_time and info.end_time and info.end_time >= info.start_time, info
        assert info.artifact_uri.endswith(f"/{info.run_id}/artifacts"), info.artifact_uri
        history = {k: [(m.step, "nan" if math.isnan(m.value) else m.value)
                       for m in sorted(c.get_metric_history(info.run_id, k), key=lambda m: (m.step, m.timestamp))]
                   for k in r.data.metrics}
        seen[ids[info.run_id]] = {
            "user": info.user_id, "artifact_uri": _text(info.artifact_uri, ids, root),
            "params": {k: _text(v, ids, root) for k, v in r.data.params.items()},
            "tags": {k: "<volatile>" if k in VOLATILE_TAGS else _text(v, ids, root)
                     for k, v in r.data.tags.items()},
            "metrics": {k: "nan" if math.isnan(v) else v for k, v in r.data.metrics.items()},
            "history": history, "artifacts": listing(info.run_id),
        }
    return seen


def _artifacts(root: Path) -> dict[str, str]:
    """Every artifact file's text, by path, run ids replaced by run names."""
    with closing(sqlite3.connect(root / "mlflow.db")) as db:
        ids = _names(db)
    files = {}
    for p in sorted((root / "mlartifacts").rglob("*")):
        if p.is_file():
            rel = str(p.relative_to(root))
            text = p.read_text(errors="replace").replace(str(root), "<root>").replace(str(root.parent), "<cwd>")
            for run_id, name in ids.items():
                rel, text = rel.replace(run_id, f"<run {name}>"), text.replace(run_id, f"<run {name}>")
            text = WALL_TIME.sub("<seconds> s", text)
            files[rel] = "\n".join(sorted(text.splitlines()))  # a table's rows in any order
    return files


def test_bulk_and_api_paths_leave_the_same_tables(tmp_path):
    bulk_root, api_root = tmp_path / "bulk" / "out", tmp_path / "api" / "out"
    bulk_root.parent.mkdir()
    api_root.parent.mkdir()
    bulk = _tables(_record(bulk_root, plain=False), bulk_root)
    api = _tables(_record(api_root, plain=True), api_root)
    assert bulk.keys() == api.keys()
    assert len(bulk["runs"]) == 1 + 8 and len(bulk["metrics"]) > 8 * 60 * 4
    assert any(dict(r)["key"] == "symptom" for r in bulk["tags"])
    for table in sorted(bulk):
        assert bulk[table] == api[table], f"table {table} differs between the bulk and the API path"
    a, b = _artifacts(bulk_root), _artifacts(api_root)
    assert len(a) >= 8 and a.keys() == b.keys()
    for path in a:
        assert a[path] == b[path], path
    # MLflow's own client reads the runs written in bulk as those written through its API
    seen = _seen_by_mlflow(bulk_root)
    assert seen == _seen_by_mlflow(api_root)
    assert sum(len(run["history"].get("train_loss", [])) == 60 for run in seen.values()) == 8


def _foreign(root: Path) -> str:
    """Someone else's experiment: runs logged with MLflow's client, one with a description and
    a ``symptom`` tag of its owner's, one without the loss metrics."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    c = MlflowClient(uri)
    exp = c.create_experiment("theirs", artifact_location=(root / "mlartifacts").as_uri())
    from mlflow.entities import Metric, Param, RunTag

    def make(name, losses, params, tags=()):
        run_id = c.create_run(exp, run_name=name).info.run_id
        ms = [Metric(k, v * f, 0, i) for i, v in enumerate(losses) for k, f in (("loss", 1.0), ("val_loss", 1.1))]
        c.log_batch(run_id, metrics=ms, params=[Param(k, v) for k, v in params.items()],
                    tags=[RunTag(k, v) for k, v in tags])
        c.set_terminated(run_id)

    make("bad", [3.0**i for i in range(12)] + [math.nan], {"lr": "3.0", "zero_grad": "False"},
         [("symptom", "my own verdict"), ("mlflow.note.content", "notes the owner wrote")])
    make("fine", [0.05 + 0.9**i for i in range(80)], {"learning_rate": "0.01"})
    make("slow", [1.0 - 0.001 * i for i in range(100)], {"lr": "0.001"})
    make("no-metrics", [], {"lr": "0.1"})
    return uri


def test_analysis_of_a_foreign_experiment_is_the_same_in_bulk_and_through_the_api(tmp_path):
    """Labels, descriptions (the owner's kept, the diagnosis in a marked block), the run made to
    hold the analysis and its files: the same tables and the same reads through MLflow's client
    whether sweeps-analyze wrote them in bulk (MLflow not even imported) or through MLflow."""
    roots = {}
    for way, env in (("bulk", {}), ("api", {"SWEEPS_PLAIN_LOGGING": "1"})):
        root = roots[way] = tmp_path / way / "out"
        root.mkdir(parents=True)
        uri = _foreign(root)
        args = ["--tracking-uri", uri, "--experiment", "theirs", "--train-metric", "loss",
                "--val-metric", "val_loss", "--output-root", str(root), "--show", "0"]
        first = run_cli(args, root.parent, env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
                        module="sweeps.analyze")
        imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in first.stderr.splitlines()}
        if way == "bulk":  # nothing of MLflow nor of its database layer
            assert not imported & {"mlflow", "sqlalchemy", "alembic"}, imported & {"mlflow", "sqlalchemy"}
        else:
            assert "mlflow" in imported
        run_cli(args + ["--relabel", "--no-plots"], root.parent, env=env, module="sweeps.analyze")
    bulk, api = _tables(roots["bulk"] / "mlflow.db", roots["bulk"]), _tables(roots["api"] / "mlflow.db", roots["api"])
    assert bulk.keys() == api.keys()
    for table in sorted(bulk):
        assert bulk[table] == api[table], f"table {table} differs between the bulk and the API path"
    a, b = _artifacts(roots["bulk"]), _artifacts(roots["api"])
    assert a.keys() == b.keys() and any(p.endswith("analysis/labels.csv") for p in a)
    for path in a:  # the pictures: the same names (their pixels are the plots' tests' business)
        assert path.endswith(".png") or a[path] == b[path], path
    seen = _seen_by_mlflow(roots["bulk"])
    assert seen == _seen_by_mlflow(roots["api"])
    assert seen["bad"]["tags"]["symptom"] == "my own verdict"
    assert seen["bad"]["tags"]["sweeps.symptom"] == "diverged"
    note = seen["bad"]["tags"]["mlflow.note.content"]
    assert note.startswith("notes the owner wrote") and note.count("<!-- sweeps:diagnosis -->") == 1
    assert seen["fine"]["tags"]["symptom"] == "healthy" and "symptom" not in seen["no-metrics"]["tags"]
    assert seen["analysis #2"]["artifacts"] == seen["analysis"]["artifacts"]  # one per analysis
    holder = seen["analysis"]
    assert holder["tags"]["sweeps.role"] == "analysis" and holder["tags"]["mlflow.runName"] == "analysis"
    assert holder["user"] == "unknown" and holder["artifact_uri"] == "file://<root>/mlartifacts/<run analysis>/artifacts"
    files = {p for p, _, _ in holder["artifacts"]}
    assert {"analysis/labels.csv", "analysis/loss_curves_all.png", "analysis/symptom_map_all.png"} <= files
