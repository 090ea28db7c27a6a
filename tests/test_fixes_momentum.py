"""zero_grad() forgotten under heavy-ball momentum, where the first update (a plain step: nothing
had accumulated yet) went less than the way to the minimum along its gradient, but momentum's
steady steps, 1 / (1 - beta) times the first where the gradient keeps its sign, go past it. The
fix restores zero_grad() and cuts the lr. Truth from continuations (test_generalisation's
rules: the run, 10x its epochs, 10x its lr), never from the labeller."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sweeps.diagnose import diagnose
from test_fixes_heal import _apply, _truth


def _classes_net(seed: int, act: type, n: int = 400, d: int = 10, k: int = 3):
    """Full-batch SGD with momentum 0.9 on a 2-layer net (32 units a layer) classifying three
    Gaussian classes whose centres differ in 5 of 10 features (cross-entropy; 400 points to
    train, 400 to validate). With ``train.zero_grad`` false the gradients are never zeroed, so
    each step follows their running sum. run(cfg) -> (train, val, gradient norms)."""
    g = np.random.default_rng(seed)
    centres = g.standard_normal((k, d)) * 0.8 * np.r_[np.ones(5), np.zeros(d - 5)]

    def data(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = g.integers(0, k, m)
        return torch.tensor(centres[y] + g.standard_normal((m, d)), dtype=torch.float32), \
            torch.tensor(y)

    (x, y), (xv, yv) = data(n), data(n)

    def run(cfg: dict) -> tuple[list[float], list[float], list[float]]:
        t = cfg["train"]
        torch.set_num_threads(1)
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(d, 32), act(), torch.nn.Linear(32, 32), act(),
                                  torch.nn.Linear(32, k))
        opt = torch.optim.SGD(net.parameters(), lr=float(cfg["optimizer"]["lr"]), momentum=0.9)
        crit = torch.nn.CrossEntropyLoss()
        train, val, norms = [], [], []
        for _ in range(int(t["epochs"])):
            if t.get("zero_grad", True) is not False:
                opt.zero_grad()
            loss = crit(net(x), y)
            loss.backward()
            norms.append(float(torch.sqrt(sum((p.grad ** 2).sum() for p in net.parameters()))))
            opt.step()
            with torch.no_grad():
                val.append(float(crit(net(xv), yv)))
            train.append(float(loss.detach()))
            if not (math.isfinite(train[-1]) and math.isfinite(val[-1])):
                break
        return train, val, norms

    return lambda cfg: run(cfg)[:2], run


@pytest.mark.parametrize("seed,act,epochs", [(1, torch.nn.ReLU, 60), (1, torch.nn.Tanh, 60),
                                             (0, torch.nn.Tanh, 200)])
def test_momentum_steps_past_the_minimum_get_a_cut_lr_with_zero_grad(seed, act, epochs):
    """lr 0.3: the first plain step went 0.10-0.17 of the way to the minimum along its gradient
    (read off its loss drop and gradient norm), momentum 0.9's steady steps 1.0-1.7 times it.
    zero_grad() alone leaves the run overfitting by the continuations' rules: its weights travel
    ten times as far a step and fit the training points within the run. With the lr cut 10x too
    the fixed run is healthy."""
    run, with_norms = _classes_net(seed, act)
    cfg = {"optimizer": {"name": "momentum", "lr": 0.3},
           "train": {"epochs": epochs, "zero_grad": False}, "data": {"n_train": 400}}
    assert _truth(run, cfg) == "diverged"  # the set-up is what the case says
    assert _truth(run, _apply(cfg, ["train.zero_grad=true"])) == "overfitting"
    train, val, norms = with_norms(cfg)
    d = diagnose(train, val, config=cfg, grad_norm=norms)
    assert d.symptom == "diverged" and d.fix[0] == "train.zero_grad=true", d.evidence
    assert d.evidence["first_step_overshoot"] < 1 <= d.evidence["momentum_step_overshoot"]
    assert "optimizer.lr=0.03" in d.fix and "momentum 0.9" in d.cause, (d.fix, d.cause)
    assert _truth(run, _apply(cfg, d.fix)) == "healthy", d.fix
