"""A minibatch net at a high lr whose loss keeps jumping back a fifth of what it removed, with
no pattern from epoch to epoch: swings (the lr too high for the gradient noise), not jitter
around a floor. Someone's script, plain torch: a 2 x 32 ReLU net on two noisy half-moons (400
points to train, 400 to validate), SGD on shuffled minibatches of 32, cross-entropy.

Expectations from continuations: in the run's second half the loss climbs back >= 10 % of the
reducible loss above its running minimum, and 10x the epochs still does in their last stretch
of the same length (the benchmark's oscillating rule)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sweeps.diagnose import diagnose

T = 100
SWING = 0.1  # a climb of this share of the reducible loss is a swing (the benchmark's truth)


def _moons(n: int = 800, noise: float = 0.3, seed: int = 11) -> tuple[torch.Tensor, ...]:
    """Two interleaved half circles (class 0 above, class 1 shifted right and down), with
    Gaussian noise: (x_train, y_train, x_val, y_val), 400 each."""
    g = np.random.default_rng(seed)
    t = g.uniform(0, math.pi, n)
    y = np.arange(n) % 2
    x = np.where(y[:, None] == 0, np.c_[np.cos(t), np.sin(t)],
                 np.c_[1 - np.cos(t), 0.5 - np.sin(t)]) + noise * g.standard_normal((n, 2))
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)
    return x[:400], y[:400], x[400:], y[400:]


def _run(lr: float, epochs: int, seed: int) -> tuple[list[float], list[float]]:
    """(train, val) losses over the whole sets after each epoch, epoch 0 before any step."""
    xt, yt, xv, yv = _moons()
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32),
                              torch.nn.ReLU(), torch.nn.Linear(32, 2))
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss, order = torch.nn.functional.cross_entropy, torch.Generator().manual_seed(seed)
    train, val = [], []
    for epoch in range(epochs + 1):
        if epoch:
            perm = torch.randperm(400, generator=order)
            for i in range(0, 400, 32):
                opt.zero_grad()
                loss(net(xt[perm[i:i + 32]]), yt[perm[i:i + 32]]).backward()
                opt.step()
        with torch.no_grad():
            train.append(float(loss(net(xt), yt)))
            val.append(float(loss(net(xv), yv)))
    return train, val


def _climb(curve: list[float], reducible: float) -> float:
    c = np.asarray(curve)
    return float(np.max(c - np.minimum.accumulate(c))) / reducible


@pytest.mark.parametrize("lr,seed", [
    pytest.param(1.0, 0, id="lr1-seed0"),
    pytest.param(0.5, 0, id="lr0.5-seed0"),
    pytest.param(0.5, 1, id="lr0.5-seed1", marks=pytest.mark.xfail(strict=True, reason=(
        "known miss: climbs 0.24 R and 0.20 R at 10 T, but its tail's jitter is as large: "
        "called healthy"))),
])
def test_minibatch_swings_are_oscillating(lr, seed):
    train, val = _run(lr, T, seed)
    longer, _ = _run(lr, 10 * T, seed)
    reducible = train[0] - min(min(train), min(longer))
    assert _climb(train[T // 2:], reducible) >= SWING  # swings in the judged half ...
    assert _climb(longer[-T:], reducible) >= SWING  # ... and still at 10 T
    d = diagnose(train, val, config={"optimizer": {"name": "sgd", "lr": lr},
                                     "train": {"epochs": T, "batch_size": 32}})
    assert d.symptom == "oscillating", d.evidence
    assert d.fix and d.fix[0].startswith("optimizer.lr=")
    assert float(d.fix[0].split("=")[1]) < lr  # the fix cuts the lr
