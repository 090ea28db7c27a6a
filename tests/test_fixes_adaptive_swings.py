"""Swings under an adaptive optimizer: Adam moves every weight about lr a step whatever its
gradient, so the loss a bounce climbs back by is the slope times a step of that length, first
order in the lr (a gradient step's overshoot costs ~ lr**2): the cut is the swing's ratio to what
is allowed, not its square root. Truth from continuations (test_generalisation's rules: the run,
10x its epochs, 10x its lr), never from the labeller."""

from __future__ import annotations

import pytest

from sweeps.diagnose import diagnose
from test_generalisation import _adam_minibatch, _truth


@pytest.mark.parametrize("seed", [0, 1])
def test_adam_swings_get_a_cut_as_large_as_their_ratio(seed):
    """Minibatch Adam at lr 3 on a 5-weight linear regression swings to the end, by the
    continuations' rules. A 10x cut (the square root's reading) still swings; the fix's 100x
    is healthy."""
    run = _adam_minibatch(seed)
    (train, val), label, m = _truth(run, 3.0, 100)
    assert label == "oscillating", m
    d = diagnose(train, val, config={"optimizer": {"name": "adam", "lr": 3.0},
                                     "train": {"epochs": 100}})
    assert d.symptom == "oscillating" and d.fix == ["optimizer.lr=0.03"], (d.fix, d.evidence)
    assert _truth(run, 0.3, 100)[1] == "oscillating"
    assert _truth(run, 0.03, 100)[1] == "healthy"


@pytest.mark.parametrize("seed", [1, 2])
def test_adam_swings_a_tenth_as_large_keep_a_tenfold_cut(seed):
    """At lr 1 the same runs swing by about 0.15 of their reducible loss: a 10x cut heals them
    (1000x would leave them stalled), and the fix stays 10x."""
    run = _adam_minibatch(seed)
    (train, val), label, _ = _truth(run, 1.0, 100)
    assert label == "oscillating"
    d = diagnose(train, val, config={"optimizer": {"name": "adam", "lr": 1.0},
                                     "train": {"epochs": 100}})
    assert d.fix == ["optimizer.lr=0.1"], d.fix
    assert _truth(run, 0.1, 100)[1] == "healthy"
    assert _truth(run, 0.001, 100)[1] == "stalled"
