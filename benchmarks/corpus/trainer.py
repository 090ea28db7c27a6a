"""Training code written for the benchmark, the way a user writes it: scikit-learn's bundled data
sets, minibatches with shuffling, cross-entropy / BCE / MSE, deeper MLPs, a small CNN, Adagrad
and AdamW, warm-up + cosine. Config keys follow this project's (optimizer.lr, train.zero_grad,
data.normalize, ...) so the labeller's fixes apply to it unchanged."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn


@lru_cache(maxsize=None)
def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets  # benchmark-only extra: pip install -e ".[bench]"

    if name == "digits":
        d = datasets.load_digits()
        return d.data.astype(np.float64), d.target.astype(np.int64)
    if name == "breast_cancer":
        d = datasets.load_breast_cancer()
        return d.data.astype(np.float64), d.target.astype(np.float64)
    if name == "diabetes":  # raw features and targets: losses in the thousands
        d = datasets.load_diabetes(scaled=False)
        return d.data.astype(np.float64), d.target.astype(np.float64)
    if name == "wine":  # 3 classes, 13 raw features on scales from 0.1 to 1,700
        d = datasets.load_wine()
        return d.data.astype(np.float64), d.target.astype(np.int64)
    if name == "iris":  # 3 classes, 4 raw features in cm (0.1 to 7.9), 150 points
        d = datasets.load_iris()
        return d.data.astype(np.float64), d.target.astype(np.int64)
    if name == "moons":  # two interleaved half-moons with noise: 2 classes, a curved boundary
        x, y = datasets.make_moons(n_samples=800, noise=0.3, random_state=11)
        return x.astype(np.float64), y.astype(np.int64)
    if name == "friedman":  # Friedman #1: y = 10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 + 10 x4 + 5 x5
        x, y = datasets.make_friedman1(n_samples=600, noise=1.0, random_state=13)
        return x.astype(np.float64), y.astype(np.float64)  # targets unscaled: variance about 24
    if name == "blobs":  # 5 classes in 20 features (8 informative), raw scales 0.1 to 1,000
        x, y = datasets.make_classification(n_samples=1000, n_features=20, n_informative=8,
                                            n_classes=5, n_clusters_per_class=1,
                                            class_sep=1.0, random_state=14)
        scale = 10.0 ** np.random.default_rng(14).uniform(-1, 3, x.shape[1])
        return (x * scale).astype(np.float64), y.astype(np.int64)
    if name == "circles":  # two noisy concentric circles: 2 classes, a ring-shaped boundary
        x, y = datasets.make_circles(n_samples=600, noise=0.15, factor=0.5, random_state=15)
        return x.astype(np.float64), y.astype(np.int64)
    if name == "noisy_labels":  # 4 classes in 30 features, 20 % of the labels flipped at random
        x, y = datasets.make_classification(n_samples=900, n_features=30, n_informative=10,
                                            n_classes=4, flip_y=0.2, random_state=16)
        return x.astype(np.float64), y.astype(np.int64)
    if name == "hastie":  # 10 Gaussian features, class 1 where their squares sum past 9.34
        x, y = datasets.make_hastie_10_2(n_samples=1200, random_state=17)
        return x.astype(np.float64), (y > 0).astype(np.float64)  # BCE on 0/1 targets
    if name == "sparse_regression":  # 60 features, 8 of them informative, unscaled targets
        x, y = datasets.make_regression(n_samples=600, n_features=60, n_informative=8,
                                        noise=20.0, bias=50.0, random_state=18)
        scale = 10.0 ** np.random.default_rng(18).uniform(-1, 2, x.shape[1])  # raw: 0.1 to 100
        return (x * scale).astype(np.float64), y.astype(np.float64)
    if name == "swiss_roll":  # the roll's position t (4.7 to 14) from its 3-D points (-11 to 21)
        x, t = datasets.make_swiss_roll(n_samples=900, noise=0.5, random_state=20)
        return x.astype(np.float64), t.astype(np.float64)  # raw: targets' variance about 8
    if name == "quantiles":  # 3 classes: shells of a 5-D standard normal, split at quantiles
        x, y = datasets.make_gaussian_quantiles(n_samples=900, n_features=5, n_classes=3,
                                                random_state=21)
        return x.astype(np.float64), y.astype(np.int64)
    if name == "momentum_classes":  # 3 classes in 10 features, 5 of them informative
        x, y = datasets.make_classification(n_samples=900, n_features=10, n_informative=5,
                                            n_classes=3, class_sep=0.8, random_state=22)
        return x.astype(np.float64), y.astype(np.int64)
    if name == "wave":  # a noisy sine on [-2, 2]: few points, a net that can memorise them
        g = np.random.default_rng(7)
        x = g.uniform(-2, 2, (400, 1))
        return x, np.sin(3 * x[:, 0]) + 0.3 * g.standard_normal(400)
    raise ValueError(f"data.name={name!r}: must be one of digits, breast_cancer, diabetes, wine, "
                     "wave, iris, moons, friedman, blobs, circles, noisy_labels, hastie, "
                     "sparse_regression, swiss_roll, quantiles, momentum_classes")


def load(d: dict, seed: int) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_val, y_val) of a seeded split; features standardised with the
    training statistics when data.normalize."""
    x, y = _raw(d["name"])
    idx = np.random.default_rng(1000 + seed).permutation(len(x))
    tr, va = idx[: d["n_train"]], idx[d["n_train"]: d["n_train"] + d["n_val"]]
    xt, xv = x[tr], x[va]
    if d.get("normalize"):
        mu, sd = xt.mean(0), np.maximum(xt.std(0), 1e-12)
        xt, xv = (xt - mu) / sd, (xv - mu) / sd
    ydt = torch.long if y.dtype == np.int64 else torch.float32
    return (torch.tensor(xt, dtype=torch.float32), torch.tensor(y[tr], dtype=ydt),
            torch.tensor(xv, dtype=torch.float32), torch.tensor(y[va], dtype=ydt))


def constant_loss(cfg: dict) -> float:
    """The training loss of the best constant prediction (no use of the inputs): the entropy of
    the class frequencies (cross-entropy, BCE) or the targets' variance (MSE), on the run's
    training split."""
    d = cfg["data"]
    _, yt, _, _ = load(d, cfg["train"]["seed"])
    y = yt.numpy()
    kind = _loss_kind(d)
    if kind == "ce":
        p = np.bincount(y) / len(y)
        return float(-np.sum(p[p > 0] * np.log(p[p > 0])))
    if kind in ("bce", "naive_bce"):
        p = float(np.mean(y))
        return float(-(p * math.log(p) + (1 - p) * math.log(1 - p))) if 0 < p < 1 else 0.0
    return float(np.var(y))


def _loss_kind(d: dict) -> str:
    return d.get("loss") or {"digits": "ce", "wine": "ce", "breast_cancer": "bce", "iris": "ce",
                             "moons": "ce", "blobs": "ce",
                             "circles": "ce", "noisy_labels": "ce",
                             "hastie": "bce", "quantiles": "ce",
                             "momentum_classes": "ce"}.get(d["name"], "mse")


def build(m: dict, n_in: int, n_out: int) -> nn.Module:
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    if m["name"] == "linear":
        return nn.Linear(n_in, n_out)
    if m["name"] == "net":
        layers: list[nn.Module] = []
        w = n_in
        for _ in range(m["layers"]):
            layers += [nn.Linear(w, m["hidden"]), acts[m["act"]]()]
            w = m["hidden"]
        return nn.Sequential(*layers, nn.Linear(w, n_out))
    if m["name"] == "cnn":  # 8x8 digit images
        c = m.get("channels", 8)
        return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, c, 3, padding=1), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * c * 4, n_out))
    if m["name"] == "gru":  # 8x8 digit images read row by row: 8 steps of 8 pixels
        return _RowGRU(m.get("hidden", 32), n_out)
    raise ValueError(f"model.name={m['name']!r}: must be one of linear, net, cnn, gru")


class _RowGRU(nn.Module):
    """A recurrent classifier: a GRU reads an 8x8 image's rows in order, its last state is
    classified by a linear layer."""

    def __init__(self, hidden: int, n_out: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(8, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.rnn(x.reshape(-1, 8, 8))
        return self.head(h[-1])


def optimizer(params: Any, o: dict) -> torch.optim.Optimizer:
    name, lr, wd = o["name"], o["lr"], o.get("weight_decay", 0.0)
    if name in ("sgd", "momentum"):
        mom = o.get("momentum", 0.9 if name == "momentum" else 0.0)
        return torch.optim.SGD(params, lr=lr, momentum=mom, weight_decay=wd)
    return {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adagrad": torch.optim.Adagrad,
            "rmsprop": torch.optim.RMSprop}[name](params, lr=lr, weight_decay=wd)


def lr_at(epoch: int, lr: float, t: dict) -> float:
    kind, T = t.get("lr_schedule", "constant"), t["epochs"]
    if kind == "constant":
        return lr
    if kind == "cosine":
        return 0.5 * lr * (1 + math.cos(math.pi * epoch / T))
    if kind == "warmup_cosine":
        w = max(1, int(t.get("warmup", 0.1) * T))
        if epoch < w:
            return lr * (epoch + 1) / w
        return 0.5 * lr * (1 + math.cos(math.pi * (epoch - w) / max(T - w, 1)))
    if kind == "step":
        return lr * t.get("lr_gamma", 0.1) ** (epoch // _step_size(t))
    if kind == "exponential":  # lr_gamma > 1: a ramp that blows up after a long healthy phase
        return lr * t.get("lr_gamma", 0.99) ** epoch
    raise ValueError(f"train.lr_schedule={kind!r}")


def logged(cfg: dict) -> dict:
    """The config as the script logs it: the model's parameter count (``model.n_params``, as
    scripts log the size of what they train), and with a step schedule the step size and factor
    its scheduler was built with (torch's StepLR(step_size, gamma)), which lr_at derives from the
    epochs; a script that logs its config logs these."""
    out = {**cfg, "model": {**cfg["model"], "n_params": n_params(cfg)}}
    t = cfg["train"]
    if t.get("lr_schedule") != "step" or "lr_step_size" in t:
        return out
    return {**out, "train": {**t, "lr_step_size": _step_size(t),
                             "lr_gamma": t.get("lr_gamma", 0.1)}}


def _n_out(name: str, loss: str) -> int:
    """The model's outputs: one logit per class for cross-entropy, else one."""
    return int(_raw(name)[1].max()) + 1 if loss == "ce" else 1


@lru_cache(maxsize=None)
def _size(name: str, model: tuple, loss: str) -> int:
    n_in = _raw(name)[0].shape[1]
    return sum(p.numel() for p in build(dict(model), n_in, _n_out(name, loss)).parameters())


def n_params(cfg: dict) -> int:
    """The trainable parameters of the run's model."""
    d = cfg["data"]
    return _size(d["name"], tuple(sorted(cfg["model"].items())), _loss_kind(d))


def _step_size(t: dict) -> int:
    """The step schedule's epochs between decays: a share of the run's epochs (half)."""
    return max(1, int(t["epochs"] * t.get("step_share", 0.5)))


def _criterion(kind: str):
    if kind == "naive_bce":  # -y log p - (1-y) log(1-p) by hand: log(0) once p saturates
        def naive(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            p = torch.sigmoid(z.squeeze(-1))
            return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
        return naive
    if kind == "bce":
        base = nn.BCEWithLogitsLoss()
        return lambda z, y: base(z.squeeze(-1), y)
    if kind == "ce":
        return nn.CrossEntropyLoss()
    base = nn.MSELoss()
    return lambda z, y: base(z.squeeze(-1), y)


def fit(cfg: dict) -> dict[str, list[float]]:
    """Train one run; per epoch: the mean minibatch train loss, the val loss after the epoch and
    the gradient norm of its last step (full batch: the gradient). Stops at a non-finite loss."""
    d, m, t = cfg["data"], cfg["model"], cfg["train"]
    torch.set_num_threads(1)
    torch.manual_seed(t["seed"])
    xt, yt, xv, yv = load(d, t["seed"])
    loss_kind = _loss_kind(d)
    net = build(m, xt.shape[1], _n_out(d["name"], loss_kind))
    opt = optimizer(net.parameters(), cfg["optimizer"])
    crit = _criterion(loss_kind)
    clip = t.get("clip_grad_norm") or math.inf
    bs = t.get("batch_size") or len(xt)
    gen = torch.Generator().manual_seed(t["seed"])
    out: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "grad_norm": []}
    best, since = math.inf, 0
    for epoch in range(t["epochs"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(epoch, cfg["optimizer"]["lr"], t)
        order = torch.randperm(len(xt), generator=gen) if bs < len(xt) else None
        total, gnorm = 0.0, 0.0
        for i in range(0, len(xt), bs):
            idx = order[i: i + bs] if order is not None else slice(None)
            xb, yb = xt[idx], yt[idx]
            if t["zero_grad"]:
                opt.zero_grad()
            loss = crit(net(xb), yb)
            loss.backward()
            gnorm = float(nn.utils.clip_grad_norm_(net.parameters(), clip))
            opt.step()
            total += float(loss.detach()) * len(xb)
        with torch.no_grad():
            v = float(crit(net(xv), yv))
        out["train_loss"].append(total / len(xt))
        out["val_loss"].append(v)
        out["grad_norm"].append(gnorm)
        if not (math.isfinite(out["train_loss"][-1]) and math.isfinite(v)):
            break
        if t.get("early_stop"):
            best, since = (v, 0) if v < best else (best, since + 1)
            if since >= t.get("patience", 20):
                break
    return out
