"""A stalled net with more parameters than training points, in a run that does not say how noisy
its labels are: the fix that makes it train properly also stops early, since the net then fits
every training label, the flipped ones included. Truth from continuations (test_generalisation's
rules: the run, 10x its epochs, 10x its lr) and from the validation curves themselves, never
from the labeller."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sweeps.diagnose import diagnose
from test_fixes_heal import _apply, _truth


def _task(seed: int, hidden: int, n: int = 100, d: int = 10, flip: float = 0.1,
          act: type = torch.nn.Tanh, optimizer: type = torch.optim.Adam):
    """Full-batch Adam (or ``optimizer``) on a 2-layer tanh (or ``act``) net (``hidden`` units a
    layer) classifying 10 Gaussian features by the sign of x0 x1 + x2, 10 % of the labels
    flipped; 1,000 points to validate. Returns (run(cfg) -> (train, val), the net's parameter
    count). Early stopping as this project's loop does it: stop once val has not improved for
    ``patience`` epochs."""
    g = np.random.default_rng(seed)

    def data(m: int):
        x = g.standard_normal((m, d))
        y = (x[:, 0] * x[:, 1] + x[:, 2] > 0).astype(np.int64)
        flipped = g.random(m) < flip
        y[flipped] = 1 - y[flipped]
        return torch.tensor(x, dtype=torch.float32), torch.tensor(y)

    (x, y), (xv, yv) = data(n), data(1000)

    def net() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(d, hidden), act(),
                                   torch.nn.Linear(hidden, hidden), act(),
                                   torch.nn.Linear(hidden, 2))

    def run(cfg: dict) -> tuple[list[float], list[float]]:
        t = cfg["train"]
        torch.set_num_threads(1)
        torch.manual_seed(seed)
        model = net()
        opt = optimizer(model.parameters(), lr=float(cfg["optimizer"]["lr"]))
        crit = torch.nn.CrossEntropyLoss()
        train, val, best, since = [], [], math.inf, 0
        for _ in range(int(t["epochs"])):
            opt.zero_grad()
            loss = crit(model(x), y)
            loss.backward()
            opt.step()
            with torch.no_grad():
                v = float(crit(model(xv), yv))
            train.append(float(loss.detach()))
            val.append(v)
            if t.get("early_stop"):
                best, since = (v, 0) if v < best else (best, since + 1)
                if since >= int(t.get("patience", 20)):
                    break
        return train, val

    return run, sum(p.numel() for p in net().parameters())


def _config(lr: float, epochs: int, p: int, n: int = 100) -> dict:
    return {"optimizer": {"name": "adam", "lr": lr}, "train": {"epochs": epochs},
            "data": {"n_train": n}, "model": {"n_params": p}}


@pytest.mark.parametrize("seed,lr", [(2, 1e-5), (1, 3e-5)])
def test_a_stalled_net_that_can_memorise_its_points_stops_early_once_fixed(seed, lr):
    run, p = _task(seed, hidden=64)
    assert p > 100  # 4,994 parameters for 100 points: it can fit every label
    cfg = _config(lr, 200, p)
    assert _truth(run, cfg) == "stalled"
    train, val = run(cfg)
    d = diagnose(train, val, config=cfg)
    assert d.symptom == "stalled", d.evidence
    assert "train.early_stop=true" in d.fix, d.fix
    assert "can fit every training label" in d.cause
    # The lr the fix asks for, over the run's epochs without stopping early (nor the 10x epochs
    # the fix allows with it): val turns up while train falls, by the continuations' rules; so
    # stopping early is part of the fix, not a decoration.
    bare = _apply(cfg, [o for o in d.fix if o.startswith("optimizer.lr=")])
    assert _truth(run, bare) == "overfitting"
    # With it: the run ends within the patience of its validation minimum, at a validation
    # loss within 2 % of the lowest the unstopped run ever reaches, below where the stall ended.
    fixed = _apply(cfg, d.fix)
    f_train, f_val = run(fixed)
    _, b_val = run(bare)
    assert len(f_val) < 200 and len(f_val) - 1 - int(np.argmin(f_val)) == 20
    assert min(f_val) <= 1.02 * min(b_val) and min(f_val) < val[-1]


def test_a_net_with_three_quarters_as_many_parameters_as_points_stops_early():
    """74 parameters for 100 points cannot fit every label one by one, yet the lr the fix asks
    for, alone, overfits by the continuations' rules (this test once asserted the fix did not
    stop early; that fix left the rerun overfitting): with early stopping it is healthy."""
    run, p = _task(0, hidden=4)
    assert p == 74
    cfg = _config(1e-4, 200, p)
    assert _truth(run, cfg) == "stalled"
    d = diagnose(*run(cfg), config=cfg)
    assert d.symptom == "stalled" and "train.early_stop=true" in d.fix, d.fix
    assert _truth(run, _apply(cfg, [o for o in d.fix if o.startswith("optimizer.lr=")])) \
        == "overfitting"
    assert _truth(run, _apply(cfg, d.fix)) == "healthy"


def test_a_net_with_a_third_as_many_parameters_as_points_is_not_stopped_early():
    """34 parameters for 100 points: the lr the fix asks for heals it alone, by the
    continuations' rules, and the fix does not stop early."""
    run, p = _task(1, hidden=2)
    assert p == 34
    cfg = _config(1e-4, 200, p)
    assert _truth(run, cfg) == "stalled"
    d = diagnose(*run(cfg), config=cfg)
    assert d.symptom == "stalled" and "train.early_stop=true" not in d.fix, d.fix
    assert _truth(run, _apply(cfg, d.fix)) == "healthy"


def test_no_early_stopping_without_a_validation_curve():
    run, p = _task(2, hidden=64)
    cfg = _config(1e-5, 200, p)
    train, _ = run(cfg)
    d = diagnose(train, None, config=cfg)
    assert d.symptom == "stalled" and "train.early_stop=true" not in d.fix, d.fix


def test_another_scripts_run_is_told_to_stop_early_in_words():
    """Flat params under common names (num_params, train_size): the fix says it in words,
    never with this project's train.* keys."""
    run, p = _task(2, hidden=64)
    train, val = run(_config(1e-5, 200, p))
    d = diagnose(train, val, config={"lr": "1e-05", "epochs": "200", "num_params": str(p),
                                     "train_size": "100"})
    assert d.symptom == "stalled"
    assert not any(o.startswith("train.") for o in d.fix), d.fix
    assert any("early stopping" in o for o in d.fix), d.fix
    assert any(o.startswith("lr: 1e-05 ->") for o in d.fix), d.fix


@pytest.mark.parametrize("seed,hidden,lr,epochs,symptom", [
    (1, 64, 1e-4, 20, "stalled"), (0, 64, 5e-5, 20, "stalled"), (2, 32, 1e-4, 50, "stalled"),
    (1, 64, 1.0, 20, "oscillating")])
def test_a_fix_that_stops_early_caps_the_epochs_at_ten_times(seed, hidden, lr, epochs, symptom):
    """The lr the fix asks for (raised for a stall, cut for swings) alone, over the run's own
    epochs, leaves the run stalled by the continuations' rules (a patience of 20 cannot even fire
    in a 20-epoch run); with early stopping the epochs are a cap, so the fix gives 10x and the
    rerun ends at its validation minimum well before it."""
    run, p = _task(seed, hidden)
    cfg = _config(lr, epochs, p)
    assert _truth(run, cfg) == symptom
    train, val = run(cfg)
    d = diagnose(train, val, config=cfg)
    assert d.symptom == symptom, d.evidence
    assert "train.early_stop=true" in d.fix and f"train.epochs={10 * epochs}" in d.fix, d.fix
    assert "a cap" in d.cause
    new_lr = [o for o in d.fix if o.startswith("optimizer.lr=")]
    assert _truth(run, _apply(cfg, new_lr)) == "stalled"  # the new lr alone did not heal it
    _, short = run(_apply(cfg, new_lr + ["train.early_stop=true"]))
    _, capped = run(_apply(cfg, d.fix))
    assert len(short) == epochs  # never stopped: still improving when its epochs ran out
    assert len(capped) < 10 * epochs and len(capped) - 1 - int(np.argmin(capped)) == 20
    assert min(capped) <= min(short)


def _least_squares(p: int, n: int = 60, noise: float = 1.0):
    """Full-batch gradient descent on a linear regression with ``p`` standard normal features
    and ``n`` training points (500 validate), weights of norm about 1 and label noise of
    ``noise``: as much noise as signal. Early stopping as this project's loop does it.
    run(cfg) -> (train, val)."""
    g = np.random.default_rng(0)
    x, xv = g.standard_normal((n, p)), g.standard_normal((500, p))
    w = g.standard_normal(p) / math.sqrt(p)
    y, yv = x @ w + noise * g.standard_normal(n), xv @ w + noise * g.standard_normal(500)

    def run(cfg: dict) -> tuple[list[float], list[float]]:
        t, lr = cfg["train"], float(cfg["optimizer"]["lr"])
        v, train, val, best, since = np.zeros(p), [], [], math.inf, 0
        for _ in range(int(t["epochs"])):
            res = x @ v - y
            train.append(float(res @ res / n))
            val.append(float(np.mean((xv @ v - yv) ** 2)))
            v = v - lr * 2 * x.T @ res / n
            if t.get("early_stop"):
                best, since = (val[-1], 0) if val[-1] < best else (best, since + 1)
                if since >= int(t.get("patience", 20)):
                    break
        return train, val
    return run


@pytest.mark.parametrize("p,lr,epochs", [(30, 1e-3, 100), (40, 3e-3, 50), (50, 1e-3, 100)])
def test_a_stall_with_half_as_many_weights_as_points_stops_early_once_fixed(p, lr, epochs):
    """Another script's stalled least-squares fit, 30-50 weights for 60 points, its label noise
    not said: the noise it fits costs val sigma**2 p / (n - p - 1), at least the noise itself
    from p = (n - 1) / 2 (analysis). The lr the fix asks for, alone, overfits by the
    continuations' rules; with the early stopping (and the epochs cap) the fix adds, it is
    healthy."""
    run = _least_squares(p)
    cfg = {"optimizer": {"name": "sgd", "lr": lr}, "train": {"epochs": epochs},
           "data": {"n_train": 60}, "model": {"n_params": p}}
    assert _truth(run, cfg) == "stalled"
    d = diagnose(*run(cfg), config=cfg)
    assert d.symptom == "stalled", d.evidence
    assert "train.early_stop=true" in d.fix and "fits the noise" in d.cause, d.fix
    assert _truth(run, _apply(cfg, [o for o in d.fix if o.startswith("optimizer.lr=")])) \
        == "overfitting"
    assert _truth(run, _apply(cfg, d.fix)) == "healthy"
