"""A run that blows up or swings under heavy-ball momentum 0.9: its fix lowers the momentum as
well as the lr. Momentum multiplies each step (and the minibatch noise in it) by up to
1 / (1 - beta) and keeps an overshooting direction swinging, decaying by sqrt(beta) a step,
whatever the lr. Truth from continuations (test_fixes_heal's rules: the run, 10x its epochs,
10x its lr), never from the labeller."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sweeps.diagnose import diagnose
from test_fixes_heal import _apply, _truth


def _heavy_ball(scales, n: int = 200, batch: int = 20, noise: float = 1.0):
    """Minibatch SGD with heavy-ball momentum (torch.optim.SGD's: v = beta v + g, w -= lr v) on a
    linear regression whose features have the given scales, labels with Gaussian noise.
    ``train.zero_grad`` false: the gradients accumulate, never zeroed. run(cfg) -> (train, val)."""
    g = np.random.default_rng(0)
    d = len(scales)
    x, xv = g.standard_normal((n, d)) * scales, g.standard_normal((100, d)) * scales
    w_true = np.linspace(1.0, 2.0, d)
    y = x @ w_true + noise * g.standard_normal(n)
    yv = xv @ w_true + noise * g.standard_normal(100)

    def run(cfg: dict) -> tuple[list[float], list[float]]:
        beta, lr = float(cfg["optimizer"].get("momentum", 0.9)), float(cfg["optimizer"]["lr"])
        keep = cfg["train"].get("zero_grad", True) is False
        w, v, acc, order = np.zeros(d), np.zeros(d), np.zeros(d), np.random.default_rng(1)
        train, val = [], []
        with np.errstate(all="ignore"):
            for _ in range(int(cfg["train"]["epochs"])):
                res = x @ w - y
                train.append(float(res @ res / n))
                val.append(float(np.mean((xv @ w - yv) ** 2)))
                if not math.isfinite(train[-1]):
                    break
                perm = order.permutation(n)
                for i in range(0, n, batch):
                    idx = perm[i:i + batch]
                    grad = 2 * x[idx].T @ (x[idx] @ w - y[idx]) / len(idx)
                    acc = acc + grad if keep else grad
                    v = beta * v + acc
                    w = w - lr * v
        return train, val
    return run


def _config(lr: float, epochs: int, **optimizer) -> dict:
    return {"optimizer": {"name": "momentum", "lr": lr, "momentum": 0.9, **optimizer},
            "train": {"epochs": epochs, "batch_size": 20}, "data": {"n_train": 200}}


@pytest.mark.parametrize("scales,lr,epochs", [
    pytest.param([1.0, 1.0], 1.5, 20, id="equal-scales"),
    pytest.param([3.0, 1.0], 0.5, 30, id="one-stiff-feature"),
    pytest.param([1.0, 0.3], 0.9, 60, id="one-flat-feature"),
])
def test_a_blow_up_under_momentum_lowers_the_momentum_too(scales, lr, epochs):
    """Ten minibatch steps an epoch under momentum 0.9: the loss blows up. The lr the fix asks
    for, at momentum 0.9, still swings by the continuations' rules; with the momentum lowered
    as the fix says, the run is healthy."""
    run = _heavy_ball(scales)
    cfg = _config(lr, epochs)
    assert _truth(run, cfg) == "diverged"
    d = diagnose(*run(cfg), config=cfg)
    assert d.symptom == "diverged", d.evidence
    assert "optimizer.momentum=0.5" in d.fix and "Momentum 0.9" in d.cause, d.fix
    cut = [o for o in d.fix if o.startswith("optimizer.lr=")]
    assert cut and float(cut[0].split("=")[1]) < lr
    assert _truth(run, _apply(cfg, cut)) == "oscillating"  # the cut alone still swings
    assert _truth(run, _apply(cfg, d.fix)) == "healthy"


def test_another_scripts_momentum_is_lowered_in_its_own_param():
    """Flat params under common names (learning_rate, momentum, batch_size, train_size): the
    fix names the script's own ``momentum``, never ``optimizer.momentum``."""
    run = _heavy_ball([1.0, 1.0])
    train, val = run(_config(1.5, 20))
    d = diagnose(train, val, config={"optimizer": "sgd", "learning_rate": "1.5",
                                     "momentum": "0.9", "epochs": "20", "batch_size": "20",
                                     "train_size": "200"})
    assert d.symptom == "diverged"
    assert "momentum: 0.9 -> 0.5" in d.fix, d.fix
    assert not any(o.startswith("optimizer.") for o in d.fix), d.fix


@pytest.mark.parametrize("name,momentum", [("sgd", 0.0), ("momentum", 0.5)])
def test_a_momentum_at_or_below_half_is_left_alone(name, momentum):
    """Plain SGD, or momentum already 0.5: the fix is the lr's alone."""
    run = _heavy_ball([1.0, 1.0])
    cfg = {**_config(3.0, 20), "optimizer": {"name": name, "lr": 3.0, "momentum": momentum}}
    train, val = run(cfg)
    d = diagnose(train, val, config=cfg)
    assert d.symptom == "diverged", d.evidence
    assert not any(o.startswith("optimizer.momentum=") for o in d.fix), d.fix
