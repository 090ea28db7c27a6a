"""Overfitting moves past validation's best point on the way down: at val's minimum the train
loss is at its lowest so far. A val minimum met while train was up in a swing (zero_grad()
forgotten, Adam's overshoot) is where the swing happened to land, and val's rise after it is the
swing's return, not memorisation.

The expectations come from analysis, not from the labeller: the diagnostic preset's models are
linear in their parameters, and benchmarks/ground_truth.py replays each run on that quadratic
and reads the population loss (not one val sample) along it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from sweeps.config import config_dir, register_configs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from ground_truth import compose_run, ground_truth, label  # noqa: E402


def _judged(*overrides: str):
    """(the labeller's diagnosis, the analytic truth, the run's history) of one run of the
    diagnostic preset."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose_run(["data=few", *overrides])
            d, h = label(cfg)
            return d, ground_truth(cfg, h), h
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.parametrize("overrides", [
    # RMSprop with zero_grad() forgotten: the running sum swings the line past its fit and back
    ("model=linear", "optimizer=rmsprop", "optimizer.lr=0.01", "data.noise=2.0",
     "train.zero_grad=false", "train.seed=0"),
    ("model=linear", "optimizer=rmsprop", "optimizer.lr=0.01", "data.noise=2.0",
     "train.zero_grad=false", "train.seed=2"),
    ("model=poly", "optimizer=rmsprop", "optimizer.lr=0.01", "data.noise=0.5",
     "train.zero_grad=false", "train.seed=2"),
])
def test_val_rising_after_a_swing_is_not_overfitting(overrides):
    d, truth, h = _judged(*overrides)
    # The truth: the run settled where more time takes it, and the population loss did not turn
    # up on the way down.
    assert truth.symptom == "healthy", truth.why
    assert d.symptom != "overfitting", d.evidence
    # The val set did end well above its minimum (what the label used to be read off).
    val = h["val_loss"]
    assert val[-1] >= 1.1 * min(val)


def test_overfitting_on_the_way_down_is_still_overfitting():
    """The same optimizer and bug on the cubic at noise 0.5, seed 0: the population loss turns
    up while train is at its lowest so far and falls on."""
    d, truth, _ = _judged("model=poly", "optimizer=rmsprop", "optimizer.lr=0.01", "data.noise=0.5",
                       "train.zero_grad=false", "train.seed=0")
    assert truth.symptom == "overfitting", truth.why
    assert d.symptom == "overfitting", d.evidence
