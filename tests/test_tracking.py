"""The tracking module against a real SQLite store: the one-transaction finish writes exactly
what MLflow's own API writes; NaN/inf survive; credentials never reach the store."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweeps import tracking
from sweeps.app import execute
from sweeps.loop import train


def _snapshot(c: MlflowClient, run_id: str) -> dict:
    r = c.get_run(run_id)
    hist = {k: [(m.step, m.value) for m in c.get_metric_history(run_id, k)] for k in r.data.metrics}
    tags = {k: v for k, v in r.data.tags.items() if k not in ("sweeps.pid",)}
    i = r.info
    files = sorted(f.path for f in c.list_artifacts(run_id)) + sorted(
        f.path for f in c.list_artifacts(run_id, "hydra"))
    texts = {f: Path(c.download_artifacts(run_id, f)).read_text() for f in files if f.endswith(".yaml")}
    return {"status": i.status, "params": r.data.params, "metrics": r.data.metrics,
            "tags": tags, "history": hist, "ended": i.end_time is not None and i.end_time >= i.start_time,
            "info": (i.run_name, i.user_id, i.lifecycle_stage, i.experiment_id,
                     i.artifact_uri.replace(run_id, "<id>")),
            "artifacts": files, "texts": texts}


@pytest.mark.parametrize("overrides", [["train.epochs=40"], ["optimizer.lr=5", "train.epochs=300"]])
def test_fast_finish_equals_mlflow_log_batch(make_cfg, tmp_path, monkeypatch, overrides):
    cfg = make_cfg(*overrides, f"paths.output_dir={tmp_path}")
    history = train(cfg)
    fast = execute(cfg, overrides, trained=history)
    monkeypatch.setenv("SWEEPS_PLAIN_LOGGING", "1")
    plain = execute(cfg, overrides, trained=history)
    c = MlflowClient(tracking.default_uri(str(tmp_path)))
    a, b = _snapshot(c, fast.run_id), _snapshot(c, plain.run_id)
    assert a["status"] == b["status"] == "FINISHED" and a["ended"] and b["ended"]
    assert a["params"] == b["params"]
    assert a["tags"] == b["tags"]
    assert a["info"] == b["info"]
    assert a["artifacts"] == b["artifacts"] and "config.yaml" in a["artifacts"]
    assert a["texts"] == b["texts"]
    assert a["history"].keys() == b["history"].keys() == {"train_loss", "val_loss", "grad_norm", "lr", "w", "b"}
    for key in a["history"]:
        assert [s for s, _ in a["history"][key]] == [s for s, _ in b["history"][key]]
        for (_, x), (_, y) in zip(a["history"][key], b["history"][key]):
            assert x == y or (math.isnan(x) and math.isnan(y))
    for key, v in a["metrics"].items():
        assert v == b["metrics"][key] or (math.isnan(v) and math.isnan(b["metrics"][key]))


def test_non_finite_metrics_are_stored(make_cfg, tmp_path):
    cfg = make_cfg("optimizer.lr=5", f"paths.output_dir={tmp_path}")
    out = execute(cfg, [], trained=train(cfg))
    c = MlflowClient(tracking.default_uri(str(tmp_path)))
    last = [c.get_metric_history(out.run_id, k)[-1].value for k in ("train_loss", "val_loss")]
    assert any(math.isnan(v) or math.isinf(v) or v > 1e300 for v in last)
    assert c.get_run(out.run_id).data.tags["symptom"] == "diverged"


def test_credentials_never_reach_the_store(make_cfg, tmp_path):
    secret = "http://alice:s3cret@tracking.example:5000"
    overrides = ["tracking.experiment=x", f"paths.output_dir={tmp_path}"]
    cfg = make_cfg(*overrides)
    out = execute(cfg, overrides + [f"+note={secret}"], trained=train(cfg))
    c = MlflowClient(tracking.default_uri(str(tmp_path)))
    r = c.get_run(out.run_id)
    blob = str(r.data.params) + str(r.data.tags)
    local = c.download_artifacts(out.run_id, "", str(tmp_path / "dl"))
    blob += "".join(p.read_text() for p in Path(local).rglob("*") if p.is_file())
    assert "s3cret" not in blob and "alice" not in blob
    assert "tracking.uri" not in r.data.params


def test_a_run_flushed_while_training_is_created_then_finished(make_cfg, tmp_path):
    """A loop longer than tracking.flush_every_s shows up RUNNING with its first epochs, and
    ends with every epoch once, like a run written at its end."""
    cfg = make_cfg("train.epochs=300", "tracking.flush_every_s=1e-9", f"paths.output_dir={tmp_path}")
    uri = tracking.default_uri(str(tmp_path))
    seen = []

    def on_flush(rl, first, metrics):
        rl.log_epochs(first, metrics)
        seen.append(MlflowClient(uri).get_run(rl.run_id).info.status)

    with tracking.run(uri, tracking.experiment_id(uri, "live"), "live", {"k": "v"}) as rl:
        history = train(cfg, on_flush=lambda first, m: on_flush(rl, first, m), flush_every_s=1e-9)
        rl.queue_epochs(rl.sent_epochs, {k: v[rl.sent_epochs:] for k, v in history.metrics.items()})
    assert seen and set(seen) == {"RUNNING"}
    r = MlflowClient(uri).get_run(rl.run_id)
    assert r.info.status == "FINISHED" and r.data.tags["k"] == "v" and r.info.run_name == "live"
    steps = [m.step for m in MlflowClient(uri).get_metric_history(rl.run_id, "train_loss")]
    assert steps == list(range(300))
    assert r.data.metrics["train_loss"] == history["train_loss"][-1]


def test_a_failing_run_is_stored_failed_with_its_traceback(tmp_path):
    uri = tracking.default_uri(str(tmp_path))
    exp = tracking.experiment_id(uri, "fails", str(tmp_path / "art"))
    with pytest.raises(RuntimeError), tracking.run(uri, exp, "boom", {}, {"p": 1}) as rl:
        rl.queue_epochs(0, {"train_loss": [1.0, 0.5]})
        raise RuntimeError("the loss function broke\nsecond line")
    c = MlflowClient(uri)
    r = c.get_run(rl.run_id)
    assert r.info.status == "FAILED" and r.data.params == {"p": "1"}
    assert r.data.tags["sweeps.error"] == "RuntimeError: the loss function broke"
    text = Path(c.download_artifacts(rl.run_id, "error/traceback.txt")).read_text()
    assert "the loss function broke" in text and "Traceback" in text
    assert [m.value for m in c.get_metric_history(rl.run_id, "train_loss")] == [1.0, 0.5]


def _store_state(path) -> dict:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return {
            "tables": sorted(r[0] for r in db.execute("select name from sqlite_master where type = 'table'")),
            # columns and indexes (MLflow's own CREATE texts vary from one new store to the next)
            "columns": sorted((t, c[1], c[2]) for (t,) in db.execute("select name from sqlite_master "
                              "where type = 'table'").fetchall() for c in db.execute(f"pragma table_info('{t}')")),
            "indexes": sorted(r[0] for r in db.execute("select name from sqlite_master where type = 'index'")),
            "alembic": db.execute("select * from alembic_version").fetchall(),
            "experiments": db.execute("select experiment_id, name, artifact_location, lifecycle_stage, "
                                      "workspace from experiments").fetchall(),
            "times": db.execute("select creation_time, last_update_time from experiments").fetchall(),
        }
    finally:
        db.close()


def test_a_new_store_seeded_from_the_template_is_what_mlflow_makes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    made = tmp_path / "made.db"
    monkeypatch.setenv("SWEEPS_NO_STORE_TEMPLATE", "1")
    assert not tracking.seed_sqlite(f"sqlite:///{made}")
    MlflowClient(f"sqlite:///{made}").search_experiments()  # MLflow makes this one
    monkeypatch.delenv("SWEEPS_NO_STORE_TEMPLATE")
    seeded = tmp_path / "seeded.db"
    assert tracking.seed_sqlite(f"sqlite:///{seeded}")
    assert list((tmp_path / "cache" / "sweeps").glob("mlflow-*-empty.db"))
    a, b = _store_state(made), _store_state(seeded)
    assert a["tables"] == b["tables"] and a["columns"] == b["columns"] and a["indexes"] == b["indexes"] and a["alembic"] == b["alembic"]
    assert a["experiments"] == b["experiments"] == [(0, "Default", str(tmp_path / "mlruns" / "0"), "active", "default")]
    assert b["times"][0][0] >= a["times"][0][0]  # stamped when seeded, not when the template was made
    # it is a working store, and an existing store is never replaced
    c = MlflowClient(f"sqlite:///{seeded}")
    exp = c.create_experiment("x")
    c.create_run(exp)
    assert not tracking.seed_sqlite(f"sqlite:///{seeded}")
    assert len(c.search_runs([exp])) == 1
    empty = tmp_path / "touched.db"  # a file someone made: left to MLflow, never replaced
    empty.touch()
    assert not tracking.seed_sqlite(f"sqlite:///{empty}") and empty.stat().st_size == 0


def test_children_read_in_one_query_equal_mlflows_search(tmp_path, monkeypatch):
    uri = tracking.default_uri(str(tmp_path))
    exp = tracking.experiment_id(uri, "kids", str(tmp_path / "art"))
    parent = tracking.start_parent(uri, exp, "p", {})
    other = tracking.start_parent(uri, exp, "other", {})
    cases = [("FINISHED", {"symptom": "healthy"}, [0.5, 0.25]),
             ("FINISHED", {"symptom": "diverged"}, [1.0, float("nan")]),
             ("FAILED", {"sweeps.error": "RuntimeError: x"}, []),
             ("KILLED", {}, [2.0])]
    for i, (status, tags, val) in enumerate(cases):
        rl = tracking.RunLog.open(uri, exp, f"run {i}", {tracking.TAG_PARENT: parent, **tags})
        rl.queue_epochs(0, {"val_loss": val} if val else {})
        rl.finish(status)
    stray = tracking.RunLog.open(uri, exp, "not a child", {tracking.TAG_PARENT: other})
    stray.finish("FINISHED")
    fast = sorted(tracking.children(uri, exp, parent), key=lambda r: r.name)
    monkeypatch.setenv("SWEEPS_PLAIN_LOGGING", "1")  # MLflow's search_runs
    slow = sorted(tracking.children(uri, exp, parent), key=lambda r: r.name)
    assert [r.name for r in fast] == ["run 0", "run 1", "run 2", "run 3"]
    assert [(r.status, r.symptom, r.error) for r in fast] == [
        ("FINISHED", "healthy", ""), ("FINISHED", "diverged", ""), ("FAILED", "", "RuntimeError: x"), ("KILLED", "", "")]
    assert fast[0].val_loss == 0.25 and math.isnan(fast[1].val_loss) and math.isnan(fast[2].val_loss)
    assert fast[3].val_loss == 2.0
    for a, b in zip(fast, slow):
        assert (a.run_id, a.name, a.status, a.symptom, a.error) == (b.run_id, b.name, b.status, b.symptom, b.error)
        assert a.val_loss == b.val_loss or (math.isnan(a.val_loss) and math.isnan(b.val_loss))


def test_runs_read_in_bulk_equal_mlflows_search(tmp_path, monkeypatch):
    uri = tracking.default_uri(str(tmp_path))
    exp = tracking.experiment_id(uri, "bulk", str(tmp_path / "art"))
    for i, (status, val) in enumerate([("FINISHED", [1.0, 0.5]), ("FINISHED", [2.0, float("nan")]),
                                       ("FAILED", [3.0]), ("KILLED", [])]):
        rl = tracking.RunLog.open(uri, exp, f"run {i}", {"symptom": "healthy", "i": i})
        rl.add(params={"optimizer.lr": 0.1 * (i + 1), "model": "linear"})
        rl.queue_epochs(0, {"val_loss": val, "w": [0.1] * len(val)} if val else {})
        rl.finish(status)
    gone = tracking.RunLog.open(uri, exp, "deleted", {})
    gone.finish("FINISHED")
    tracking.delete_run(uri, gone.run_id)

    def view(runs):
        out = {}
        for r in runs:
            i = r.info
            metrics = {k: "nan" if math.isnan(v) else v for k, v in r.data.metrics.items()}
            out[i.run_id] = (i.run_name, str(i.experiment_id), i.status, i.start_time, i.end_time,
                             i.lifecycle_stage, i.artifact_uri, i.user_id, r.data.tags, r.data.params, metrics)
        return out

    fast = {s: view(tracking.search_all(uri, exp, status=s)) for s in (None, "FINISHED")}
    monkeypatch.setenv("SWEEPS_PLAIN_LOGGING", "1")  # MLflow's search_runs
    slow = {s: view(tracking.search_all(uri, exp, status=s)) for s in (None, "FINISHED")}
    assert fast == slow
    assert len(fast[None]) == 4 and len(fast["FINISHED"]) == 2
    assert {v[0] for v in fast["FINISHED"].values()} == {"run 0", "run 1"}
    assert sorted(str(v[10].get("val_loss")) for v in fast[None].values()) == ["0.5", "3.0", "None", "nan"]


def test_histories_read_in_bulk_equal_mlflows_reads(tmp_path, monkeypatch):
    uri = tracking.default_uri(str(tmp_path))
    exp = tracking.experiment_id(uri, "hist", str(tmp_path / "art"))
    ids = []
    for i in range(3):
        rl = tracking.RunLog.open(uri, exp, f"r{i}", {})
        rl.log_epochs(0, {"loss": [1.0 + i, 2.0, float("nan")], "other": [9.0]})
        rl.log_epochs(1, {"loss": [5.0 * i]})  # step 1 logged again, later: the last value wins
        rl.finish("FINISHED")
        ids.append(rl.run_id)
    fast = tracking.histories(uri, ids, ["loss"])
    monkeypatch.setenv("SWEEPS_PLAIN_LOGGING", "1")
    slow = tracking.histories(uri, ids, ["loss"])
    assert fast.keys() == slow.keys() == {(r, "loss") for r in ids}
    for k in fast:
        assert [s for s, _ in fast[k]] == [s for s, _ in slow[k]] == [0, 1, 2]
        assert [str(v) for _, v in fast[k]] == [str(v) for _, v in slow[k]]
    assert [v for _, v in fast[(ids[2], "loss")]][:2] == [3.0, 10.0]
