"""Slow end-to-end: the README's main job, the diagnostic preset, through the real CLI."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def test_diagnostic_preset_end_to_end(cli):
    proc = cli("sweep=diagnostic")
    c = MlflowClient(cli.uri)
    exp = c.get_experiment_by_name("diagnostic")
    runs = c.search_runs([exp.experiment_id], max_results=1000)
    kids = [r for r in runs if r.data.tags.get("sweeps.role") == "child"]
    assert len(kids) == 2 * 3 * 4 * 3 * 2
    assert all(r.info.status == "FINISHED" for r in runs)
    grid = {(r.data.params["model"], r.data.params["optimizer"], r.data.params["optimizer.lr"],
             r.data.params["data.noise"], r.data.params["train.zero_grad"]) for r in kids}
    assert len(grid) == len(kids)
    symptoms = {r.data.tags["symptom"] for r in kids}
    assert symptoms == {"healthy", "diverged", "stalled", "oscillating", "overfitting"}
    assert "144 jobs" in proc.stdout
