"""Durations that do not mislead: runs trained together in one batched program record equal
shares of its time, laid end to end, with a tag that says so; a run trained alone records its own."""

from __future__ import annotations

from mlflow.tracking import MlflowClient


def _children(cli):
    c = MlflowClient(cli.uri)
    exp = c.get_experiment_by_name("adhoc")
    runs = c.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("sweeps.role") == "parent")
    return parent, [r for r in runs if r.data.tags.get("sweeps.role") == "child"]


def test_batched_runs_share_their_programs_time(cli):
    cli("-m", "optimizer.lr=0.01,0.03,0.1,0.3", "train.epochs=300")  # one batched program
    parent, kids = _children(cli)
    assert len(kids) == 4
    for r in kids:
        assert "trained with 3 other runs in one batched program" in r.data.tags["sweeps.batch"]
        assert "1/4 share" in r.data.tags["sweeps.batch"]
        assert r.info.end_time > r.info.start_time
    kids.sort(key=lambda r: r.info.start_time)
    spans = [r.info.end_time - r.info.start_time for r in kids]
    assert max(spans) - min(spans) <= 2  # equal shares, up to rounding to milliseconds
    for a, b in zip(kids, kids[1:]):
        assert abs(b.info.start_time - a.info.end_time) <= 2  # end to end
    # the shares happen inside the launch, and add up to no more than it took
    assert parent.info.start_time <= kids[0].info.start_time
    assert kids[-1].info.end_time <= parent.info.end_time
    assert sum(spans) <= parent.info.end_time - parent.info.start_time


def test_a_run_trained_alone_records_its_own_time(cli):
    cli("-m", "hydra/launcher=basic", "optimizer.lr=0.01,0.1", "train.epochs=300")
    _, kids = _children(cli)
    assert len(kids) == 2
    for r in kids:
        assert "sweeps.batch" not in r.data.tags
        assert r.info.end_time >= r.info.start_time
