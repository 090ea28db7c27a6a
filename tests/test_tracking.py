"""The tracking module against a real SQLite store: the one-transaction finish writes exactly
what MLflow's own API writes; NaN/inf survive; credentials never reach the store."""

from __future__ import annotations

import math

import pytest
from mlflow.tracking import MlflowClient

from sweeps import tracking
from sweeps.app import execute
from sweeps.loop import train


def _snapshot(c: MlflowClient, run_id: str) -> dict:
    r = c.get_run(run_id)
    hist = {k: [(m.step, m.value) for m in c.get_metric_history(run_id, k)] for k in r.data.metrics}
    tags = {k: v for k, v in r.data.tags.items() if k not in ("sweeps.pid",)}
    return {"status": r.info.status, "params": r.data.params, "metrics": r.data.metrics,
            "tags": tags, "history": hist, "ended": r.info.end_time is not None}


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
    from pathlib import Path

    blob += "".join(p.read_text() for p in Path(local).rglob("*") if p.is_file())
    assert "s3cret" not in blob and "alice" not in blob
    assert "tracking.uri" not in r.data.params


@pytest.mark.parametrize("uri, shown", [
    ("http://u:p@host:5000", "http://host:5000"),
    ("postgresql://mlflow:pw@db.local/mlflow", "postgresql://db.local/mlflow"),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ("text with https://a:b@h/x inside", "text with https://h/x inside"),
])
def test_scrub(uri, shown):
    assert tracking.scrub(uri) == shown
