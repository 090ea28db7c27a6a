"""Early stopping ends a run `patience` epochs after val's minimum: it cures swings only where
they begin after that. A run whose loss already climbed back in its first half, after val had
turned up, swings within the early-stopped run too, so the fix cuts the lr, not early stopping
alone. The expectation comes from what the loop's early stopping does with the curve (the epoch
it stops at, and what the curve does before it), never from the labeller."""

from __future__ import annotations

import math

import numpy as np

from sweeps.diagnose import diagnose


def _stop_epoch(val: list[float], patience: int = 20) -> int:
    """Where this project's loop stops a run early: `patience` epochs without a new best val."""
    best, since = math.inf, 0
    for i, v in enumerate(val):
        best, since = (v, 0) if v < best else (best, since + 1)
        if since >= patience:
            return i
    return len(val)


def _spiky(spike: int | None) -> tuple[list[float], list[float]]:
    """400 epochs: train falls as 0.1 + 1.3 exp(-e / 30), climbs back by 0.4 every 20 epochs
    from epoch 220 (swings in the judged half) and, with ``spike``, by up to 1.2 for three
    epochs from that one; val falls to its minimum at epoch 5 and rises after it."""
    e = np.arange(400, dtype=float)
    train = 0.1 + 1.3 * np.exp(-e / 30)
    if spike is not None:
        train[spike:spike + 3] += np.array([0.8, 1.2, 0.6])
    train[220::20] += 0.4
    val = 1.3 - 0.06 * np.minimum(e, 5) + 0.002 * np.maximum(e - 5, 0)
    return train.tolist(), val.tolist()


def test_a_swing_inside_the_early_stopped_run_is_not_cured_by_early_stopping():
    """Val turns up at epoch 5, so early stopping ends the run at epoch 25; the loss climbed
    back by most of what it had removed at epochs 15-17, inside that stretch: the stopped run
    swings too, and the fix changes the lr. Without that early spike, every swing comes after
    epoch 25 and early stopping alone is the fix."""
    cfg = {"optimizer": {"name": "sgd", "lr": 1.0}, "train": {"epochs": 400}}
    train, val = _spiky(15)
    stop = _stop_epoch(val)
    assert stop == 25
    low = np.minimum.accumulate(train[:stop + 1])
    assert np.max(np.asarray(train[:stop + 1]) - low) > 0.5 * (train[0] - min(train))
    d = diagnose(train, val, config=cfg)
    assert d.symptom == "oscillating"
    assert "optimizer.lr=0.1" in d.fix, d.fix
    calm = diagnose(*_spiky(None), config=cfg)
    assert calm.symptom == "oscillating" and calm.fix == ["train.early_stop=true"], calm.fix
