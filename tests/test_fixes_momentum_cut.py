"""A run that blows up under heavy-ball momentum (zero_grad() in place): the cut covers the
momentum too. Gradient descent on a quadratic grows the loss by about (lr*lam - 1)**2 a step,
heavy ball by about (lr*lam - 1 - beta)**2, and heavy ball's steady step is lr / (1 - beta)
times the gradient, so the cut that growth asks for puts lr / (1 - beta), not lr, at the edge.
A cut for plain steps leaves shuffled minibatches swinging: the gradient noise each step adds is
carried 1 / (1 - beta) steps on.

Truth from continuations (test_generalisation's rules: the run, 10x its epochs, 10x its lr),
never from the labeller."""

from __future__ import annotations

import pytest

from sweeps.diagnose import diagnose
from test_fixes_heal import _apply, _regression, _truth


def _heavy_ball(scales, batch: int, noise: float, beta: float = 0.9):
    """Shuffled minibatch SGD with momentum ``beta`` on a linear regression whose features have
    the given scales (test_fixes_heal._regression). run(cfg) -> (train, val)."""
    return _regression(scales, batch=batch, noise=noise, beta=beta)


CASES = [
    # Four unit-scale features (curvature 2), lr 3: lr x curvature 6, past heavy ball's edge of
    # 2 (1 + beta) = 3.8. Cut 10x, lr x curvature 0.6 is inside it but lr / (1 - beta) x
    # curvature is 6: the minibatches' noise keeps the run swinging.
    pytest.param([1.0, 1.0, 1.0, 1.0], 20, 0.1, 3.0, 30, id="unit-features-lr3"),
    # A stiff feature (scale 10, curvature 200) and a soft one, noisy targets, 100 epochs.
    pytest.param([10.0, 1.0], 20, 1.0, 0.3, 100, id="stiff-feature-lr0.3"),
]


@pytest.mark.parametrize("scales,batch,noise,lr,epochs", CASES)
def test_a_blow_up_under_momentum_gets_a_cut_for_its_steady_step(scales, batch, noise, lr,
                                                                  epochs):
    run = _heavy_ball(scales, batch, noise)
    cfg = {"optimizer": {"name": "momentum", "lr": lr, "momentum": 0.9},
           "train": {"epochs": epochs, "batch_size": batch}, "data": {"n_train": 200}}
    assert _truth(run, cfg) == "diverged"  # the set-up is what the case says
    train, val = run(cfg)
    d = diagnose(train, val, config=cfg)
    assert d.symptom == "diverged", d.evidence
    cut = float(next(o for o in d.fix if o.startswith("optimizer.lr=")).split("=", 1)[1])
    # The fixed run is healthy by the continuations ...
    assert _truth(run, _apply(cfg, d.fix)) == "healthy", d.fix
    # ... and a decade less cut (what the growth asks of plain steps) still swings.
    assert _truth(run, _apply(cfg, [f"optimizer.lr={cut * 10}"])) == "oscillating", d.fix
    assert "momentum 0.9" in d.cause, d.cause  # the cause says why the cut is that deep


def test_plain_sgd_keeps_its_cut():
    """Without momentum nothing changes: the same blow-up under plain SGD (beta 0), lr 6 (lr x
    curvature 12, growth ~121 a step), is cut to where the growth puts lr x curvature near 1,
    and heals there."""
    run = _heavy_ball([1.0, 1.0, 1.0, 1.0], 20, 0.1, beta=0.0)
    cfg = {"optimizer": {"name": "sgd", "lr": 6.0},
           "train": {"epochs": 30, "batch_size": 20}, "data": {"n_train": 200}}
    assert _truth(run, cfg) == "diverged"
    train, val = run(cfg)
    d = diagnose(train, val, config=cfg)
    assert d.symptom == "diverged" and "momentum" not in d.evidence, d.evidence
    assert _truth(run, _apply(cfg, d.fix)) == "healthy", d.fix
