"""Early stopping that cannot fire: with patience p it ends a run p epochs after val's minimum,
so a short run whose val turns up fewer than p epochs before its end overfits to the last epoch
with early stopping on. Its fix is a patience that fires on it (half the epochs it went on past
val's minimum), not ``train.early_stop=true`` again, which changes nothing.

The expectations come from the runs themselves (this project's loop, re-run with the fix), not
from the labeller.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from sweeps.config import config_dir, register_configs
from sweeps.diagnose import diagnose

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from ground_truth import compose_run, label, with_fix  # noqa: E402

# The cubic on 12 noisy points under Adam at lr 0.1 for 30 epochs, early stopping on at its
# default patience (20): val is lowest at epoch 8 and climbs after it.
RUN = ["data=few", "model=poly", "optimizer=adam", "optimizer.lr=0.1", "data.noise=0.5",
       "train.epochs=30", "train.early_stop=true"]


def _run(overrides: list[str]):
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return label(compose_run(overrides))
    finally:
        GlobalHydra.instance().clear()


def test_a_patience_that_cannot_fire_is_shortened_and_the_shorter_one_stops_the_rise():
    d, h = _run(RUN)
    val = h["val_loss"]
    # The run: early stopping never fired (all 30 epochs) and val ended well above its minimum.
    assert len(val) == 30 and val[-1] >= 1.1 * min(val)
    assert d.symptom == "overfitting", d.evidence
    patience = [o for o in d.fix if o.startswith("train.patience=")]
    assert "train.early_stop=true" in d.fix and patience, d.fix
    assert "patience of 20 epochs" in d.cause
    # Re-run with the fix: early stopping now ends the run before its epochs, lower on val than
    # where the first run ended.
    fixed = RUN
    for o in d.fix:
        fixed = with_fix(fixed, o)
    _, h2 = _run(fixed)
    assert len(h2["val_loss"]) < 30
    assert h2["val_loss"][-1] < val[-1]


def test_a_patience_that_fires_is_left_alone():
    """The same run for 200 epochs: the default patience stops it, and a run without early
    stopping that overfits is told to stop early, with no patience beside it."""
    d, h = _run([o for o in RUN if not o.startswith(("train.epochs", "train.early_stop"))]
                + ["train.epochs=200"])
    assert len(h["val_loss"]) == 200
    assert d.symptom == "overfitting", d.evidence
    assert "train.early_stop=true" in d.fix
    assert not any(o.startswith("train.patience=") for o in d.fix), d.fix


def test_another_scripts_patience_param_is_its_own():
    _, h = _run(RUN)
    mine = {"lr": "0.1", "epochs": "30", "early_stop": "True", "patience": "20"}
    d = diagnose(h["train_loss"], h["val_loss"], config=mine)
    assert d.symptom == "overfitting"
    assert any(f.startswith("patience: 20 -> ") for f in d.fix), d.fix
    words = diagnose(h["train_loss"], h["val_loss"], config={"lr": "0.1", "epochs": "30"})
    assert any("has not improved for" in f for f in words.fix), words.fix
