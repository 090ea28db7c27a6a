"""Train many configs at once as one batched tensor program: every parameter, gradient and
optimizer state gets a leading run dimension, so N runs cost about as many tensor ops as one.
Run by run the numbers follow ``sweeps.loop.train`` (the reference; tests/test_engine.py).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, Hashable, Iterator, Mapping, Optional, Sequence

import torch
from omegaconf import DictConfig
from torch import Tensor

from sweeps.checks import validate
from sweeps.config import ConfigError, ModelName, OptimizerName, linear_layers, lr_at
from sweeps.data import make_data
from sweeps.loop import (LINEAR_METRICS, METRICS, TORCH_DTYPES, History, plain,
                         resolve_device, torch_dtype)
from sweeps.batched import BatchedOptimizer, col, per_run, where
from sweeps.model import build_model

# Optimizers the engine implements, by the update rule they share (momentum is SGD whose
# coefficient is sweeps.config.momentum_of's).
FAMILY = {OptimizerName.sgd: OptimizerName.sgd, OptimizerName.momentum: OptimizerName.sgd,
          OptimizerName.adam: OptimizerName.adam, OptimizerName.rmsprop: OptimizerName.rmsprop}
MODELS = tuple(ModelName)  # models the engine implements
DTYPES = TORCH_DTYPES  # dtypes the engine implements
# The config fields the engine implements, by training group: each is a per-run tensor or part
# of group_key (data.name is only a label). A config with any other field (one a schema gained
# later) is unsupported, so it runs in the sequential loop until the engine implements the field
# and lists it here; tests/test_engine.py checks this list against the schemas.
HANDLED = {
    "data": ("name", "slope", "intercept", "noise", "n_train", "n_val", "x_low", "x_high",
             "normalize", "seed"),
    "model": ("name", "degree", "hidden", "layers", "init"),
    "optimizer": ("name", "lr", "momentum", "weight_decay", "beta1", "beta2", "alpha", "eps"),
    "train": ("epochs", "seed", "device", "dtype", "zero_grad", "clip_grad_norm", "lr_schedule",
              "lr_gamma", "lr_step_size", "early_stop", "patience"),
}
STOP_REASONS = ("completed", "non_finite", "early_stop")  # codes 0, 1, 2 on the device


# --- which configs can run here, and together ---------------------------------------------------


def unsupported(cfg: Any) -> Optional[str]:
    """Why ``cfg`` cannot be trained by the engine (one line), or None when it can.

    A config that fails validation or names a missing device is unsupported, so the caller
    runs it the sequential way, which reports the problem as it always does; so is one with
    a field the engine does not implement (not in HANDLED), which the loop trains.
    """
    try:
        if isinstance(cfg, (DictConfig, Mapping)):
            validate(cfg)
        p = plain(cfg)
        resolve_device(p.train.device)
        lr_at(0, p.optimizer.lr, p.train)
    except (ConfigError, KeyError, AttributeError, TypeError) as err:
        return str(err) or type(err).__name__
    unknown = [f"{group}.{key}" for group, names in HANDLED.items()
               for key in vars(getattr(p, group)) if key not in names]
    if unknown:
        return f"{', '.join(unknown)}: not implemented by the engine"
    if p.model.name not in MODELS:
        return f"model.name={p.model.name!r}: the engine runs {list(MODELS)}"
    if p.optimizer.name not in FAMILY:
        return f"optimizer.name={p.optimizer.name!r}: the engine runs {sorted(FAMILY)}"
    if p.train.dtype not in DTYPES:
        return f"train.dtype={p.train.dtype!r}: the engine runs {sorted(DTYPES)}"
    return None


def can_batch(cfg: Any) -> bool:
    """True when the engine can train ``cfg`` (see ``unsupported`` for why not)."""
    return unsupported(cfg) is None


def group_key(cfg: Any, device: Any = None) -> Hashable:
    """Configs with equal keys share one batched program: the same tensor shapes (model,
    data sizes), update rule, number of epochs, device and dtype. Everything else (learning
    rate and schedule, optimizer settings, zero_grad, clipping, early stopping, seeds, noise)
    is a per-run tensor."""
    p = plain(cfg)
    m = p.model
    return (m.name, tuple(linear_layers(m)), FAMILY[p.optimizer.name], p.train.epochs,
            p.data.n_train, p.data.n_val, str(_device(p, device)), p.train.dtype)


def train_batch(cfgs: Sequence[Any], device: Any = None) -> list[History]:
    """Train every config, batching those with equal ``group_key``; one History per config,
    in order, as ``sweeps.loop.train`` would return it.

    Args:
        cfgs: composed configs (or anything with ``data``/``model``/``optimizer``/``train``).
        device: run everything here instead of each config's ``train.device``.

    Raises:
        ConfigError: a config the engine cannot train (the message says why).
    """
    plains = [plain(c) for c in cfgs]
    groups: dict[Hashable, list[int]] = {}
    for i, (c, p) in enumerate(zip(cfgs, plains)):
        why = unsupported(c)
        if why is not None:
            raise ConfigError(f"config {i} cannot be batched: {why}")
        groups.setdefault(group_key(p, device), []).append(i)
    out: list[Optional[History]] = [None] * len(cfgs)
    for idx in groups.values():
        runs = [plains[i] for i in idx]
        dev = _device(runs[0], device)
        with _threads(1 if dev.type == "cpu" and _work(runs) < SMALL_WORK else None):
            for i, h in zip(idx, _train_group(runs, dev)):
                out[i] = h
    return out  # type: ignore[return-value]


# Below this many elements per tensor op (runs x points x widest layer), torch's intra-op
# threads only add synchronisation: on a busy 2-core machine the diagnostic grid trains in
# 0.6 s on one thread and 2-4 s on two. (torch's own grain size is 32768 elements.)
SMALL_WORK = 32768


def _work(runs: Sequence[SimpleNamespace]) -> int:
    m = runs[0].model
    width = max(max(shape) for shape in linear_layers(m))
    return len(runs) * max(runs[0].data.n_train, runs[0].data.n_val) * width


@contextmanager
def _threads(n: Optional[int]) -> Iterator[None]:
    """Run with ``n`` intra-op threads (None: as configured), restoring the setting after."""
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _device(run: SimpleNamespace, device: Any) -> torch.device:
    return torch.device(device) if device is not None else resolve_device(run.train.device)


# --- the batched program --------------------------------------------------------------------------


def _init_params(runs: Sequence[SimpleNamespace], dtype: torch.dtype, device: torch.device
                 ) -> list[Tensor]:
    """Each run's initial parameters, built exactly as the loop builds them, stacked on dim 0."""
    per_run = []
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG as it was
        for r in runs:
            torch.manual_seed(r.train.seed)
            per_run.append([t.detach().to(dtype) for t in build_model(r.model).parameters()])
    return [torch.stack(ts).to(device) for ts in zip(*per_run)]


def _features(kind: str, x: Tensor, degree: int) -> Tensor:
    """What the first nn.Linear sees: x, or PolyFeatures' [x, x^2, ..., x^degree]."""
    if kind != ModelName.poly:
        return x
    return x.pow(torch.arange(1, degree + 1, device=x.device).to(x.dtype))


def _layers(params: Sequence[Tensor], h: Tensor) -> Tensor:
    """Batched model output (N, n, 1): nn.Linear layers as baddbmm (their addmm, batched), tanh
    between them. Parameters are nn.Linear's with a leading run dimension: weight (N, out, in),
    bias (N, out)."""
    last = len(params) // 2 - 1
    for i in range(last + 1):
        h = torch.baddbmm(params[2 * i + 1].unsqueeze(1), h, params[2 * i].transpose(1, 2))
        if i < last:
            h = torch.tanh(h)
    return h


def _mse(pred: Tensor, y: Tensor) -> Tensor:
    return (pred - y).pow(2).mean(dim=(1, 2))


def _loss_and_grads(kind: str, params: list[Tensor], feats: Tensor, y: Tensor
                    ) -> tuple[Tensor, list[Tensor]]:
    """Per-run training loss (N,) and its gradients. The affine models (linear, poly) use the
    closed form of nn.Linear + MSELoss backward (fewer ops); the MLP uses autograd, where
    summing the per-run losses keeps each run's gradient its own."""
    if kind != ModelName.mlp:
        diff = _layers(params, feats) - y
        go = diff * (2.0 / y.shape[1])  # dMSE/dpred
        grad_w = torch.bmm(go.transpose(1, 2), feats)  # (N, 1, d), as weight
        return diff.pow(2).mean(dim=(1, 2)), [grad_w, go.sum(dim=1)]
    leaves = [p.detach().requires_grad_(True) for p in params]
    with torch.enable_grad():
        loss = _mse(_layers(leaves, feats), y)
        grads = torch.autograd.grad(loss, leaves, grad_outputs=torch.ones_like(loss))
    return loss.detach(), list(grads)


def _stack_data(runs: Sequence[SimpleNamespace], dtype: torch.dtype, device: torch.device
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    sets = [make_data(r.data, r.train.seed, dtype) for r in runs]
    return tuple(torch.stack([getattr(s, k) for s in sets]).to(device)  # type: ignore[return-value]
                 for k in ("x_train", "y_train", "x_val", "y_val"))


def _train_group(runs: Sequence[SimpleNamespace], device: torch.device) -> list[History]:
    """One batched program for the runs of one group (see ``group_key``): the loop's steps
    in its order, each on all runs at once. A run that stops (non-finite loss, early stop)
    keeps its slots frozen from then on, selected with torch.where, so it never touches the
    numbers of the others."""
    start, wall_start = time.perf_counter(), time.time()
    n_runs, tc = len(runs), runs[0].train
    epochs, kind, dtype = tc.epochs, runs[0].model.name, torch_dtype(tc.dtype)
    x_tr, y_tr, x_va, y_va = _stack_data(runs, dtype, device)
    f_tr, f_va = (_features(kind, x, runs[0].model.degree) for x in (x_tr, x_va))
    params = _init_params(runs, dtype, device)

    # Learning rates are pure functions of the epoch: one table, built before the loop.
    lr64 = torch.tensor([[lr_at(e, r.optimizer.lr, r.train) for r in runs] for e in range(epochs)],
                        dtype=torch.float64)
    lr = lr64.to(device=device, dtype=dtype)
    opt = BatchedOptimizer(FAMILY[runs[0].optimizer.name], runs, params, lr64, dtype, device)
    zero_grad = torch.tensor([r.train.zero_grad for r in runs], device=device)
    all_zero = bool(zero_grad.all())
    none_zero = not bool(zero_grad.any())
    max_norm = col([r.train.clip_grad_norm if r.train.clip_grad_norm is not None else float("inf")
                     for r in runs], dtype, device)
    early = [r.train.early_stop for r in runs]
    if any(early):
        early_on = torch.tensor(early, device=device)
        patience = torch.tensor([r.train.patience for r in runs], device=device)
        best = torch.full((n_runs,), float("inf"), dtype=dtype, device=device)
        since = torch.zeros(n_runs, dtype=torch.long, device=device)

    acc = [torch.zeros_like(p) for p in params]  # .grad, which accumulates unless zero_grad
    alive = torch.ones(n_runs, dtype=torch.bool, device=device)
    reason = torch.zeros(n_runs, dtype=torch.long, device=device)
    rows, alive_rows = [], []
    sync_every = 1 if device.type == "cpu" else 25  # a host sync per epoch is free only on CPU
    for epoch in range(epochs):
        loss, grads = _loss_and_grads(kind, params, f_tr, y_tr)
        if all_zero:
            new_acc = grads
        elif none_zero:
            new_acc = [a + g for a, g in zip(acc, grads)]
        else:
            new_acc = [torch.where(per_run(zero_grad, g), g, a + g) for a, g in zip(acc, grads)]
        # clip_grad_norm_: total 2-norm over the run's parameters, then scale by
        # min(max_norm / (norm + 1e-6), 1) -- always multiplied, as torch does.
        per_param = [torch.linalg.vector_norm(a.flatten(1), dim=1) for a in new_acc]
        norm = torch.linalg.vector_norm(torch.stack(per_param, dim=1), dim=1)  # innermost, as torch
        coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        new_acc = [a * per_run(coef, a) for a in new_acc]
        new_params, new_state = opt.step(params, new_acc, lr[epoch], epoch)

        # A run that stopped keeps its numbers frozen: its slots are never written again.
        params = where(alive, new_params, params)
        acc = where(alive, new_acc, acc)
        opt.state = {k: where(alive, new_state[k], opt.state[k]) for k in opt.state}

        with torch.no_grad():
            val = _mse(_layers(params, f_va), y_va)
        row = [loss, val, norm, lr[epoch]]
        if kind == ModelName.linear:
            row += [params[0].view(n_runs), params[1].view(n_runs)]
        rows.append(torch.stack(row))
        alive_rows.append(alive)

        finite = torch.isfinite(loss) & torch.isfinite(val)
        stop = alive & ~finite
        reason = torch.where(stop, 1, reason)
        if any(early):
            better = val < best
            best = torch.where(better, val, best)
            since = torch.where(better, 0, since + 1)
            stop_early = alive & finite & early_on & (since >= patience)
            reason = torch.where(stop_early, 2, reason)
            stop = stop | stop_early
        alive = alive & ~stop
        if epoch % sync_every == sync_every - 1 and not bool(alive.any()):
            break

    names = METRICS + (LINEAR_METRICS if kind == ModelName.linear else ())
    return _histories(rows, alive_rows, reason, names, epochs, device,
                      seconds=(time.perf_counter() - start) / n_runs, started=wall_start)


def _histories(rows: list[Tensor], alive_rows: list[Tensor], reason: Tensor,
               names: tuple[str, ...], epochs: int, device: torch.device, seconds: float,
               started: float) -> list[History]:
    """Cut each run's History from the per-epoch rows: it ends at the epoch it stopped (that
    epoch included). ``seconds`` is each run's share of the program's wall time, and the runs
    take their shares one after another from ``started``: their durations add up to the
    program's, as runs trained one by one would."""
    block = torch.stack(rows).cpu().double()  # (epochs run, metrics, runs): one copy to the host
    counts = torch.stack(alive_rows).sum(dim=0).tolist()
    out = []
    for r, code in enumerate(reason.tolist()):
        cols = block[: counts[r], :, r]
        metrics = {k: cols[:, j].tolist() for j, k in enumerate(names)}
        out.append(History(metrics=metrics, epochs=epochs, stop_reason=STOP_REASONS[code],
                           device=str(device), seconds=seconds, started=started + r * seconds,
                           batch=len(counts)))
    return out
