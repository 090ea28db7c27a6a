"""The prescribed fix, applied to the same numpy set-up and re-run, heals the run: judged by the
continuation rules of test_generalisation (10x the epochs, 10x the lr), never by the labeller.
One table per way a fix used to fall short on the generalisation benchmark's calibration part."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plain_torch import full_batch_adam
from sweeps.diagnose import diagnose
from test_generalisation import _deep_net, _rules


def _apply(cfg: dict, fix: list[str]) -> dict:
    """The config with the fix's overrides (``group.key=value``) applied."""
    out = {g: dict(v) for g, v in cfg.items()}
    for o in fix:
        key, value = o.split("=", 1)
        group, name = key.split(".", 1)
        try:
            parsed: object = float(value)
        except ValueError:
            parsed = {"true": True, "false": False}.get(value.lower(), value)
        out.setdefault(group, {})[name] = parsed
    return out


def _lr_at(e: int, cfg: dict) -> float:
    tr, lr = cfg["train"], cfg["optimizer"]["lr"]
    if tr.get("lr_schedule", "constant") == "exponential":
        return lr * tr["lr_gamma"] ** e
    return lr


def _regression(scales, n: int = 200, batch: int | None = None, w_true=None,
                noise: float = 0.1, beta: float = 0.0):
    """Gradient descent on a linear regression whose features have the given scales (no bias,
    targets centred, with Gaussian noise of sd ``noise``): the curvature of weight i is
    2 * scales[i]**2. ``batch``: shuffled minibatches of that size, else full batch. ``beta``:
    heavy-ball momentum as torch's SGD has it (v = beta v + g, w -= lr v). Returns run(cfg) ->
    (train, val)."""
    g = np.random.default_rng(0)
    d = len(scales)
    x, xv = g.standard_normal((n, d)) * scales, g.standard_normal((100, d)) * scales
    w_true = np.linspace(1.0, 2.0, d) if w_true is None else np.asarray(w_true)
    y = x @ w_true + noise * g.standard_normal(n)
    yv = xv @ w_true + noise * g.standard_normal(100)

    def run(cfg: dict) -> tuple[list[float], list[float]]:
        w, order, train, val = np.zeros(d), np.random.default_rng(1), [], []
        step, acc, vel = batch or n, np.zeros(d), np.zeros(d)
        keep = cfg["train"].get("zero_grad", True) is False  # gradients accumulate, never zeroed
        with np.errstate(all="ignore"):
            for e in range(int(cfg["train"]["epochs"])):
                res = x @ w - y
                train.append(float(res @ res / n))
                val.append(float(np.mean((xv @ w - yv) ** 2)))
                if not math.isfinite(train[-1]):
                    break
                lr = _lr_at(e, cfg)
                perm = order.permutation(n)
                for i in range(0, n, step):
                    idx = perm[i:i + step]
                    grad = 2 * x[idx].T @ (x[idx] @ w - y[idx]) / len(idx)
                    acc = acc + grad if keep else grad
                    vel = beta * vel + acc
                    w = w - lr * vel
        return train, val
    return run


def _epoch_means(scales, n: int = 200, batch: int = 20):
    """Shuffled minibatch SGD in float32 (torch) on a linear regression whose features have the
    given scales, logging each epoch's mean minibatch loss, as most scripts do (the first taken
    before any update): an epoch in which the loss overflowed logs inf. run(cfg) -> (train,
    val)."""
    import torch

    g = np.random.default_rng(0)
    d = len(scales)
    x, xv = (torch.tensor(g.standard_normal((m, d)) * scales, dtype=torch.float32)
             for m in (n, 100))
    w_true = torch.linspace(1.0, 2.0, d)
    y, yv = (a @ w_true + 0.1 * torch.tensor(g.standard_normal(len(a)), dtype=torch.float32)
             for a in (x, xv))

    def run(cfg: dict) -> tuple[list[float], list[float]]:
        w = torch.zeros(d, requires_grad=True)
        opt = torch.optim.SGD([w], lr=float(cfg["optimizer"]["lr"]))
        order, train, val = torch.Generator().manual_seed(1), [], []
        for _ in range(int(cfg["train"]["epochs"])):
            losses = []
            for idx in torch.randperm(n, generator=order).split(batch):
                opt.zero_grad()
                loss = ((x[idx] @ w - y[idx]) ** 2).mean()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            train.append(float(np.mean(losses)))
            with torch.no_grad():
                val.append(float(((xv @ w - yv) ** 2).mean()))
            if not math.isfinite(train[-1]):
                break
        return train, val
    return run


def _truth(run, cfg: dict) -> str:
    """The continuation label of the set-up cfg: the run, 10x its epochs, 10x its lr."""
    T, lr = int(cfg["train"]["epochs"]), cfg["optimizer"]["lr"]
    longer = _apply(cfg, [f"train.epochs={10 * T}"])
    bolder = _apply(cfg, [f"optimizer.lr={10 * lr}"])
    const = None
    if cfg["train"].get("lr_schedule", "constant") != "constant":
        const = run(_apply(longer, ["train.lr_schedule=constant"]))
    return _rules(run(cfg), run(longer), run(bolder), const)[0]


HEAL = [
    # Raw features on a scale of 100: lr x curvature ~ 2e4, the loss grows 4e8x an epoch. The
    # cut that growth asks for is 1e5; a cut held to 1000x still diverged.
    pytest.param(_regression([100.0, 80.0]), {"lr": 1.0, "epochs": 60}, "diverged",
                 id="unnormalised-features-need-a-cut-beyond-1000x"),
    # Ten minibatch steps an epoch at lr x curvature ~ 5 on the stiff weight: each step grows
    # the loss ~16x, the epoch ~1e12x. Read per epoch the cut was 1000x, and the soft weights
    # (9x less curvature, most of the loss) then stalled; per step it is 10x.
    pytest.param(_regression([3.0, 1.0, 1.0], batch=20, w_true=[0.5, 2.0, 2.0]),
                 {"lr": 0.28, "epochs": 30,
                                                     "batch_size": 20, "n_train": 200},
                 "diverged", id="minibatch-growth-read-per-step"),
    # Ten minibatch steps an epoch at lr x curvature ~ 90 on raw features (scales 30 and 20 or
    # 30): the loss overflows float32 in the first epoch, so no growth is read off the curve and
    # the cut was 10x, still lr x curvature ~ 9: diverged. Overflowing from a start no higher
    # than 1.8e19 within 9 updates takes growing >= 138x an update: lr x curvature >= 12.8.
    *[pytest.param(_epoch_means(scales), {"lr": 0.05, "epochs": 30, "batch_size": 20},
                   "diverged", id=f"overflowed-in-its-first-epoch-{scales[1]:g}")
      for scales in ([30.0, 20.0], [30.0, 30.0])],
    # An lr ramp (exponential, gamma 1.05): healthy for ~100 epochs, then every larger lr
    # overshoots and the loss blows up. A 10x smaller start only blows up later.
    pytest.param(_regression([1.0, 0.5]), {"lr": 0.005, "epochs": 300,
                                           "lr_schedule": "exponential", "lr_gamma": 1.05},
                 "diverged", id="lr-ramp-held-below-where-it-broke"),
    # zero_grad() forgotten in a loop of ten minibatch steps an epoch: the first epoch's steps
    # already summed 1..10 gradients, 5.5x the plain progress. Read as plain, the lr looked
    # right and the fix only restored zero_grad(): the plain run then stalled.
    pytest.param(_regression([1.0, 1.0], batch=20), {"lr": 5e-4, "epochs": 30,
                                                     "zero_grad": False, "batch_size": 20},
                 "oscillating", id="zero-grad-in-minibatches-lr-too-low-once-plain"),
    # zero_grad() forgotten at a tiny lr: the summed gradient's steps grow every step, so the
    # curve speeds up as if leaving a plateau, and the stall's pace is read off steps 100-300x
    # plain ones. The fix restored zero_grad() and asked for 3-7x the epochs: the plain run
    # then stalled; the first update (a plain step) asks for a 1000x lr.
    *[pytest.param(_regression([1.0, 1.0], batch=b),
                   {"lr": lr, "epochs": T, "zero_grad": False, "batch_size": b}, "stalled",
                   id=f"zero-grad-stall-sped-up-by-the-running-sum-bs{b}-T{T}")
      for b, lr, T in ((20, 1e-6, 30), (10, 1e-6, 30), (20, 3e-7, 100))],
    # Deep sigmoid nets leaving their plateau at the end (the drops still grow): a 10x lr meets
    # the sharper curvature beyond it and blows up; more epochs at this lr finish the descent.
    pytest.param(lambda cfg: _deep_net("sigmoid", 4, 0)(cfg["optimizer"]["lr"],
                                                        int(cfg["train"]["epochs"])),
                 {"lr": 0.1, "epochs": 100}, "stalled", id="sigmoid-4-leaving-its-plateau"),
    pytest.param(lambda cfg: _deep_net("sigmoid", 4, 1)(cfg["optimizer"]["lr"],
                                                        int(cfg["train"]["epochs"])),
                 {"lr": 0.1, "epochs": 100}, "stalled", id="sigmoid-4-seed1-leaving-its-plateau"),
    pytest.param(lambda cfg: _deep_net("sigmoid", 3, 0)(cfg["optimizer"]["lr"],
                                                        int(cfg["train"]["epochs"])),
                 {"lr": 0.03, "epochs": 100}, "stalled", id="sigmoid-3-leaving-its-plateau"),
]


@pytest.mark.parametrize("run,setup,symptom", HEAL)
def test_the_fix_heals(run, setup, symptom):
    cfg = {"optimizer": {"name": "sgd", "lr": setup["lr"]},
           "train": {"epochs": setup["epochs"], "zero_grad": setup.get("zero_grad", True),
                     **{k: setup[k] for k in ("lr_schedule", "lr_gamma", "batch_size")
                        if k in setup}},
           "data": {"n_train": setup.get("n_train", 200)}}
    assert _truth(run, cfg) == symptom  # the set-up is what the case says
    train, val = run(cfg)
    d = diagnose(train, val, config=cfg)
    assert d.symptom == symptom, d.evidence
    fixed = _apply(cfg, d.fix)
    assert _truth(run, fixed) == "healthy", (d.fix, fixed)


def test_more_epochs_in_another_scripts_terms():
    """A foreign run leaving its plateau gets its longer run under its own epochs param, or in
    words; never this project's train.epochs."""
    train, val = _deep_net("sigmoid", 4, 0)(0.1, 100)
    d = diagnose(train, val, config={"lr": "0.1", "num_epochs": "100"})
    assert d.symptom == "stalled"
    assert d.fix[0].startswith("num_epochs: 100 -> "), d.fix
    assert int(d.fix[0].split("-> ")[1]) > 100
    words = diagnose(train, val, config={"lr": "0.1"})
    assert words.fix[0].startswith("train for ") and "train." not in " ".join(words.fix)


def _ill_conditioned(scales, w_true):
    """Full-batch gradient descent on a regression whose features differ in scale (the stiff
    weight's curvature 2 * scales[0]**2 caps the lr, the flat ones crawl); logs the gradient
    norm the labeller reads the first step's curvature from. run(cfg) -> (train, val, grads)."""
    g = np.random.default_rng(0)
    d, n = len(scales), 200
    x, xv = g.standard_normal((n, d)) * scales, g.standard_normal((100, d)) * scales
    y, yv = x @ w_true + 0.1 * g.standard_normal(n), xv @ w_true + 0.1 * g.standard_normal(100)

    def run(cfg: dict):
        w, train, val, grads = np.zeros(d), [], [], []
        with np.errstate(all="ignore"):
            for _ in range(int(cfg["train"]["epochs"])):
                res = x @ w - y
                train.append(float(res @ res / n))
                val.append(float(np.mean((xv @ w - yv) ** 2)))
                grad = 2 * x.T @ res / n
                grads.append(float(np.linalg.norm(grad)))
                if not math.isfinite(train[-1]):
                    break
                w = w - cfg["optimizer"]["lr"] * grad
        return train, val, grads
    run.stiffest = float(np.linalg.eigvalsh(2 * x.T @ x / n)[-1])  # the loss's largest curvature
    return run


@pytest.mark.parametrize("scales,w_true,lr,T", [
    pytest.param([10.0, 1.0], [0.1, 2.0], 5e-3, 30, id="two-scales"),
    pytest.param([20.0, 1.0, 1.0], [0.1, 2.0, 2.0], 1e-3, 50, id="three-weights"),
])
def test_a_stall_at_the_curvature_limit_trains_longer(scales, w_true, lr, T):
    """Stalled because the stiff weight caps the lr: the first plain step already went about
    the whole way to the minimum along the gradient, so the usual 10x lr blows up. More epochs
    at this lr heal it (continuation truth)."""
    run = _ill_conditioned(np.array(scales), np.array(w_true))
    cfg = {"optimizer": {"name": "sgd", "lr": lr}, "train": {"epochs": T}}

    def two(c):
        return run(c)[:2]

    assert _truth(two, cfg) == "stalled"
    assert _truth(two, _apply(cfg, [f"optimizer.lr={10 * lr}"])) != "healthy"  # 10x overshoots
    train, val, grads = run(cfg)
    d = diagnose(train, val, config=cfg, grad_norm=grads)
    assert d.symptom == "stalled"
    assert _truth(two, _apply(cfg, d.fix)) == "healthy", d.fix


def test_a_stall_past_the_curvature_limit_cuts_the_lr():
    """The gradient does not shrink because the stiff weight zig-zags across its valley at
    lr x lambda ~ 2 (the first step overshot its minimum): called stalled by its gradient, but
    healed by a smaller lr, not a larger one (continuation truth)."""
    run = _ill_conditioned(np.array([10.0, 1.0]), np.array([1.0, 0.1]))
    cfg = {"optimizer": {"name": "sgd", "lr": 1.995 / run.stiffest}, "train": {"epochs": 50}}

    def two(c):
        return run(c)[:2]

    assert _truth(two, cfg) == "stalled"
    train, val, grads = run(cfg)
    d = diagnose(train, val, config=cfg, grad_norm=grads)
    assert d.symptom == "stalled"
    assert float(d.fix[0].split("=")[1]) < cfg["optimizer"]["lr"], d.fix
    assert _truth(two, _apply(cfg, d.fix)) == "healthy", d.fix


def _momentum_regression(scales, w_true, n: int = 200, batch: int = 20):
    """Minibatch SGD with momentum 0.9 on a linear regression (features of the given scales, no
    bias); with ``train.zero_grad`` false every step's gradient is added to the running sum of
    all earlier ones, and momentum follows that sum. Returns run(cfg) -> (train, val)."""
    g = np.random.default_rng(0)
    d = len(scales)
    x, xv = g.standard_normal((n, d)) * scales, g.standard_normal((100, d)) * scales
    y, yv = x @ w_true + 0.1 * g.standard_normal(n), xv @ w_true + 0.1 * g.standard_normal(100)

    def run(cfg: dict) -> tuple[list[float], list[float]]:
        lr, keep = cfg["optimizer"]["lr"], cfg["train"].get("zero_grad", True) is False
        w, v, acc, order, train, val = np.zeros(d), np.zeros(d), np.zeros(d), \
            np.random.default_rng(1), [], []
        with np.errstate(all="ignore"):
            for _ in range(int(cfg["train"]["epochs"])):
                perm, total = order.permutation(n), 0.0
                for i in range(0, n, batch):
                    idx = perm[i:i + batch]
                    res = x[idx] @ w - y[idx]
                    total += float(res @ res)
                    grad = 2 * x[idx].T @ res / len(idx)
                    acc = acc + grad if keep else grad
                    v = 0.9 * v + acc
                    w = w - lr * v
                train.append(total / n)
                val.append(float(np.mean((xv @ w - yv) ** 2)))
                if not math.isfinite(train[-1]):
                    break
        return train, val
    return run


# zero_grad() forgotten under momentum in minibatches: the first epoch's steps already follow
# sums of sums, so read as the plain pace the first epoch promised 1-6 time constants and the
# fix only restored zero_grad(); the plain run then stalled. The loss's first trough (the
# summed gradient's quarter swing) puts the plain pace at 0.05-0.4 time constants.
TROUGH = [([1.0, 1.0], [1.0, 2.0], 1e-5), ([1.0, 1.0], [1.0, 2.0], 3e-5),
          ([2.0, 0.5], [0.5, 3.0], 3e-5), ([1.0, 0.3], [1.0, 3.0], 1e-4),
          ([3.0, 0.3], [0.3, 3.0], 1e-5)]


@pytest.mark.parametrize("scales,w_true,lr", TROUGH)
def test_zero_grad_restored_under_momentum_gets_the_lr_its_trough_asks_for(scales, w_true, lr):
    run = _momentum_regression(np.array(scales), np.array(w_true))
    cfg = {"optimizer": {"name": "momentum", "lr": lr},
           "train": {"epochs": 30, "zero_grad": False, "batch_size": 20},
           "data": {"n_train": 200}}
    assert _truth(run, cfg) in ("oscillating", "diverged")  # the set-up is what the case says
    assert _truth(run, _apply(cfg, ["train.zero_grad=true"])) == "stalled"  # plain at this lr
    train, val = run(cfg)
    d = diagnose(train, val, config=cfg)
    assert d.fix[0] == "train.zero_grad=true" and "zero_grad" in d.cause
    assert any(o.startswith("optimizer.lr=") for o in d.fix), (d.fix, d.evidence)
    assert _truth(run, _apply(cfg, d.fix)) == "healthy", (d.fix, d.evidence)


def test_a_zero_grad_stall_in_another_scripts_terms_heals():
    """The same stall logged by another script under common names (optimizer, lr, batch_size,
    n_train):
    its minibatches are counted, and the lr its fix names heals the run."""
    run = _regression([1.0, 1.0], batch=20)
    cfg = {"optimizer": {"name": "sgd", "lr": 1e-6},
           "train": {"epochs": 30, "zero_grad": False, "batch_size": 20},
           "data": {"n_train": 200}}
    d = diagnose(*run(cfg), config={"optimizer": "SGD", "lr": "1e-06", "epochs": "30",
                                    "zero_grad": "False", "batch_size": "20", "n_train": "200"})
    assert d.symptom == "stalled" and "zero_grad: false -> true" in [o.lower() for o in d.fix]
    lr = next(float(o.split("->")[1]) for o in d.fix if o.startswith("lr: "))
    fixed = _apply(cfg, ["train.zero_grad=true", f"optimizer.lr={lr}"])
    assert _truth(run, fixed) == "healthy", d.fix


def _adam_net(depth: int = 4, seed: int = 0):
    """Full-batch Adam on a sigmoid MLP (``depth`` layers of 32) fitting a noisy sine from 100
    points: it sits on a plateau at small lrs. Returns run(cfg) -> (train, val)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x, xv = torch.rand(100, 1, generator=g) * 6 - 3, torch.rand(200, 1, generator=g) * 6 - 3
    y = torch.sin(2 * x) + 0.1 * torch.randn(100, 1, generator=g)
    yv = torch.sin(2 * xv) + 0.1 * torch.randn(200, 1, generator=g)

    def run(cfg: dict) -> tuple[list[float], list[float]]:
        torch.set_num_threads(1)
        torch.manual_seed(seed)
        layers: list = []
        for i in range(depth):
            layers += [torch.nn.Linear(1 if i == 0 else 32, 32), torch.nn.Sigmoid()]
        net = torch.nn.Sequential(*layers, torch.nn.Linear(32, 1))
        return full_batch_adam(net, float(cfg["optimizer"]["lr"]), int(cfg["train"]["epochs"]),
                               (x, y, xv, yv))
    return run


def test_an_adam_stall_is_not_raised_past_an_lr_of_one():
    """Adam moves every weight about lr a step: the 1000x raise a deep sigmoid net's plateau
    asks for (lr 0.01 -> 10) blows it up by the continuations; the fix holds the lr at 1 and
    gives the rest of the pace as epochs."""
    run = _adam_net()
    cfg = {"optimizer": {"name": "adam", "lr": 0.01}, "train": {"epochs": 20}}
    assert _truth(run, cfg) == "stalled"
    d = diagnose(*run(cfg), config=cfg)
    assert d.symptom == "stalled", d.evidence
    assert "optimizer.lr=1.0" in d.fix and any(o.startswith("train.epochs=") for o in d.fix)
    assert _truth(run, _apply(cfg, ["optimizer.lr=10.0"])) == "diverged"
    assert _truth(run, _apply(cfg, d.fix)) != "diverged"
