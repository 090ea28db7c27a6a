"""A validation loss logged every k epochs (NaN between, as sweeps-analyze reads a script that
evaluates every k epochs, or from the second epoch on) is a curve with gaps, not a blow-up: a
loop stops at its first non-finite loss, so a NaN that a logged value follows was never logged.

The expectations come from analysis, not from the labeller: the diagnostic preset's models are
linear in their parameters, and benchmarks/ground_truth.py derives each run's symptom from that
quadratic (the exact recurrence, or a replay) and the population loss along it. Before the gaps
were read as such, every run here was labelled diverged. (sweeps-analyze on a store written
that way: tests/test_foreign_logging.py.)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from sweeps.config import config_dir, register_configs, training_config
from sweeps.diagnose import diagnose

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from ground_truth import compose_run, ground_truth, train  # noqa: E402

# One run of each symptom, by the analytic truth (checked below, not assumed).
RUNS = {
    "healthy": ("model=linear", "optimizer=adam", "optimizer.lr=0.01", "data.noise=0.5"),
    "stalled": ("model=linear", "optimizer=sgd", "optimizer.lr=0.001", "data.noise=0.5"),
    "oscillating": ("model=linear", "optimizer=adam", "optimizer.lr=0.01", "data.noise=0.5",
                    "train.zero_grad=false"),
    "overfitting": ("model=poly", "optimizer=adam", "optimizer.lr=0.1", "data.noise=2.0"),
    "diverged": ("model=linear", "optimizer=sgd", "optimizer.lr=1.0", "data.noise=0.5"),
}


def _run(*overrides: str):
    """(the run's config, its history, its analytic truth): the preset's loop, seed 0."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose_run(["data=few", *overrides])
            h = train(cfg)
            return training_config(cfg), h, ground_truth(cfg, h)
    finally:
        GlobalHydra.instance().clear()


def _every(val: list[float], k: int, phase: int) -> list[float]:
    return [v if i % k == phase else math.nan for i, v in enumerate(val)]


@pytest.mark.parametrize("every,phase", [(5, 0), (10, 9), (2, 1)])
@pytest.mark.parametrize("symptom", list(RUNS))
def test_a_val_logged_every_k_epochs_keeps_the_label_analysis_gives(symptom, every, phase):
    config, h, truth = _run(*RUNS[symptom])
    assert truth is not None and truth.symptom == symptom, truth
    val = _every(h["val_loss"], every, phase)
    assert sum(map(math.isnan, val)) >= len(val) // 2  # half the epochs or more have no val
    d = diagnose(h["train_loss"], val, config=config, grad_norm=h["grad_norm"])
    assert d.symptom == symptom, (truth.why, d.evidence)
    if symptom != "diverged":  # (a diverged run's train loss ends the judging first)
        assert d.evidence.get("val_gaps_filled", 0) > 0


def test_a_val_that_goes_non_finite_at_the_last_epoch_is_still_a_blow_up():
    # The loop's record of a run stopped by a NaN val: every epoch logged until that one.
    config, h, truth = _run(*RUNS["healthy"])
    train_loss = h["train_loss"][:40]
    val = h["val_loss"][:39] + [math.nan]
    d = diagnose(train_loss, val, config=config)
    assert d.symptom == "diverged"
    assert d.evidence["first_nonfinite_epoch"] == 39
    # ... and an infinite val is a blow-up wherever it is, gaps or not
    gappy = _every(h["val_loss"][:40], 5, 0)
    gappy[20] = math.inf
    assert diagnose(train_loss, gappy, config=config).symptom == "diverged"
