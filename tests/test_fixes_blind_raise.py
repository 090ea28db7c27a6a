"""A stall whose pace asks for the largest lr raise a fix guesses (1000x), with nothing measured
to bound it, in a fix that stops early: a decade of the raise goes to the epochs (a cap the run
stops short of). Truth from continuations (test_generalisation's rules: the run, 10x its epochs,
10x its lr), never from the labeller."""

from __future__ import annotations

import pytest
import torch

from sweeps.diagnose import diagnose
from test_fixes_heal import _apply, _truth
from test_fixes_memorise import _task


@pytest.mark.parametrize("seed,act", [(0, torch.nn.ReLU), (0, torch.nn.Sigmoid),
                                      (1, torch.nn.ReLU)])
def test_a_blind_thousandfold_raise_gives_a_decade_to_the_epochs(seed, act):
    """Full-batch SGD at lr 1e-3 for 20 epochs on a 2-layer net of 64 units (4,994 weights for
    100 points, so the fix stops early): by the continuations' rules it stalled. The 1000x lr
    its pace asks for, with early stopping and the epochs that pace gives, swings or overfits
    within the run; a decade less lr with 10x that cap is healthy."""
    run, p = _task(seed, 64, act=act, optimizer=torch.optim.SGD)
    cfg = {"optimizer": {"name": "sgd", "lr": 1e-3}, "train": {"epochs": 20},
           "data": {"n_train": 100}, "model": {"n_params": p}}
    assert _truth(run, cfg) == "stalled"
    d = diagnose(*run(cfg), config=cfg)
    assert d.symptom == "stalled" and "train.early_stop=true" in d.fix, d.fix
    assert "optimizer.lr=0.1" in d.fix and "blind jump" in d.cause, (d.fix, d.cause)
    epochs = next(int(o.split("=")[1]) for o in d.fix if o.startswith("train.epochs="))
    assert 20 < epochs <= 2000  # a cap of at most 100x the run's
    asked = _apply(cfg, ["optimizer.lr=1.0", "train.early_stop=true",
                         f"train.epochs={epochs // 10}"])
    assert _truth(run, asked) in ("oscillating", "overfitting")
    assert _truth(run, _apply(cfg, d.fix)) == "healthy", d.fix


def test_a_raise_bounded_by_the_pace_keeps_its_epochs():
    """lr 1e-3 for 50 epochs on the sigmoid net asks for 100x, not the largest raise: the fix
    keeps the raise whole and its 10x cap, and heals the run; a decade of it given to the
    epochs would have left the run stalled (early stopping ends it on a slow stretch)."""
    run, p = _task(0, 64, act=torch.nn.Sigmoid, optimizer=torch.optim.SGD)
    cfg = {"optimizer": {"name": "sgd", "lr": 1e-3}, "train": {"epochs": 50},
           "data": {"n_train": 100}, "model": {"n_params": p}}
    d = diagnose(*run(cfg), config=cfg)
    assert d.symptom == "stalled" and "blind jump" not in d.cause, d.cause
    assert "optimizer.lr=0.1" in d.fix and "train.epochs=500" in d.fix, d.fix
    assert _truth(run, _apply(cfg, d.fix)) == "healthy", d.fix
    shifted = ["optimizer.lr=0.01", "train.early_stop=true", "train.epochs=5000"]
    assert _truth(run, _apply(cfg, shifted)) == "stalled"
