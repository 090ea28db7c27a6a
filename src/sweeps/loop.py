"""The canonical PyTorch training loop: config in, History out. Not pure: it seeds torch's
global RNG (as a script would) and, for a tiny CPU loop, sets torch's thread count while it runs.

Nothing here talks to MLflow or the console; a caller that wants live progress passes
``on_flush``, which receives the newest epochs every ``flush_every_s`` seconds.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn

from omegaconf import DictConfig, OmegaConf

from sweeps.checks import allowed
from sweeps.config import TRAINING_GROUPS, ConfigError, Dtype, OptimizerName, lr_at, momentum_of
from sweeps.data import make_data
from sweeps.model import build_model, linear_wb

METRICS = ("train_loss", "val_loss", "grad_norm", "lr")
LINEAR_METRICS = ("w", "b")
TORCH_DTYPES = {Dtype.float32: torch.float32, Dtype.float64: torch.float64}


@dataclass
class History:
    """What one run produced, epoch by epoch (index = epoch, starting at 0).

    ``train_loss[e]`` is the loss of epoch e's forward pass (before its step); ``val_loss[e]``,
    ``w[e]`` and ``b[e]`` are measured after the step; ``grad_norm[e]`` is the norm of the
    gradient that step used (before any clipping); ``lr[e]`` the learning rate it used.
    """

    metrics: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0  # epochs configured
    stop_reason: str = "completed"  # completed | non_finite | early_stop
    device: str = "cpu"
    seconds: float = 0.0  # wall time of the training itself (a batched run: its share)
    started: float = 0.0  # when the training began, seconds since the epoch (time.time())
    batch: int = 1  # runs trained together in one program (1: this run alone)

    @property
    def epochs_run(self) -> int:
        return len(self.metrics.get("train_loss", []))

    def __getitem__(self, key: str) -> list[float]:
        return self.metrics[key]


def plain(cfg: Any) -> SimpleNamespace:
    """The training groups as plain namespaces: attribute access on OmegaConf nodes costs
    microseconds, which add up to a large share of a tiny loop's time."""
    if isinstance(cfg, SimpleNamespace):
        return cfg
    groups = {}
    for g in TRAINING_GROUPS:
        node = cfg[g]
        if isinstance(node, DictConfig):
            node = OmegaConf.to_container(node, resolve=True)
        elif not isinstance(node, Mapping):
            node = vars(node) if not hasattr(node, "__dataclass_fields__") else asdict(node)
        groups[g] = SimpleNamespace(**node)
    return SimpleNamespace(**groups)


def resolve_device(name: str) -> torch.device:
    """Turn ``train.device`` into a torch.device; ``auto`` picks CUDA when available, else CPU.

    Raises:
        ConfigError: the device was asked for by name but is not available here.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name!r}: CUDA is not available here; use auto or cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"train.device={name!r}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device='mps': MPS is not available here; use auto or cpu")
    return torch.device(name)


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype ``train.dtype`` names.

    Raises:
        ConfigError: a name that is not a Dtype.
    """
    if name not in TORCH_DTYPES:
        raise ConfigError(f"train.dtype={name!r}: must be {allowed('train.dtype')}")
    return TORCH_DTYPES[name]


def make_optimizer(params: Any, opt: Any) -> torch.optim.Optimizer:
    """The torch optimizer named by the ``optimizer`` config node."""
    name, mom = opt.name, momentum_of(opt)
    if name in (OptimizerName.sgd, OptimizerName.momentum):
        return torch.optim.SGD(params, lr=opt.lr, momentum=mom, weight_decay=opt.weight_decay)
    if name == OptimizerName.adam:
        return torch.optim.Adam(
            params, lr=opt.lr, betas=(opt.beta1, opt.beta2), eps=opt.eps, weight_decay=opt.weight_decay
        )
    if name == OptimizerName.rmsprop:
        return torch.optim.RMSprop(
            params, lr=opt.lr, alpha=opt.alpha, eps=opt.eps, momentum=mom,
            weight_decay=opt.weight_decay,
        )
    raise ConfigError(f"optimizer.name={name!r}: must be {allowed('optimizer.name')}")


def _collect(rows: list[torch.Tensor], names: tuple[str, ...], history: History) -> bool:
    """Move the epochs not yet in ``history`` to the host in one copy. Returns True when one
    of them has a non-finite loss; the history then ends at the first such epoch."""
    done = history.epochs_run
    if len(rows) <= done:
        return False
    block = torch.stack(rows[done:]).cpu().double()
    for j, k in enumerate(names):
        history.metrics[k].extend(block[:, j].tolist())
    finite = torch.isfinite(block[:, :2]).all(dim=1)
    if bool(finite.all()):
        return False
    cut = done + int((~finite).nonzero()[0, 0]) + 1
    for k in names:
        del history.metrics[k][cut:]
    return True


def train(cfg: Any, on_flush: Optional[Callable[[int, dict[str, list[float]]], None]] = None,
          flush_every_s: float = 0.0) -> History:
    """Run the canonical loop for one config and return its History.

    Args:
        cfg: the composed config (``data``, ``model``, ``optimizer``, ``train`` nodes).
        on_flush: optional; called as ``on_flush(first_epoch, new_metrics)`` with the epochs
            recorded since the last call, at most every ``flush_every_s`` seconds while training
            (0 = never). The last epochs are not sent: they are in the returned History.

    Raises:
        ConfigError: the device is not available or a value is not allowed.

    A non-finite train or validation loss ends the run early: that epoch is recorded and
    ``stop_reason`` is ``non_finite``. It is a result, not an error.
    """
    cfg = plain(cfg)
    tc = cfg.train
    device = resolve_device(tc.device)
    dtype = torch_dtype(tc.dtype)
    torch.manual_seed(tc.seed)  # model init (mlp) draws from the global RNG
    data = make_data(cfg.data, tc.seed, dtype).to(device)
    model = build_model(cfg.model).to(device=device, dtype=dtype)
    criterion = nn.MSELoss()
    optimizer = make_optimizer(model.parameters(), cfg.optimizer)
    wb = linear_wb(model)
    max_norm = tc.clip_grad_norm if tc.clip_grad_norm is not None else math.inf

    # Per-epoch numbers stay on the device and move to the host in one copy per flush.
    names = METRICS + (LINEAR_METRICS if wb is not None else ())
    rows: list[torch.Tensor] = []
    history = History(metrics={k: [] for k in names}, epochs=tc.epochs, device=str(device))
    sync_every = 1 if device.type == "cpu" else 25  # a host sync per epoch is free only on CPU
    best_val, since_best = math.inf, 0
    flushed = 0
    start = last_flush = time.perf_counter()
    history.started = time.time()

    # A tiny full-batch loop gains nothing from intra-op threads and loses to their hand-offs,
    # several times over on a busy machine; the engine does the same for small programs.
    small = device.type == "cpu" and (cfg.data.n_train + cfg.data.n_val) * sum(p.numel() for p in model.parameters()) < 1_000_000
    threads = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    model.train()
    try:
        for epoch in range(tc.epochs):
            lr = lr_at(epoch, cfg.optimizer.lr, tc)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if tc.zero_grad:
                optimizer.zero_grad()  # .grad accumulates across backward() calls unless cleared
            pred = model(data.x_train)  # forward pass: prediction
            loss = criterion(pred, data.y_train)  # forward pass: how wrong
            loss.backward()  # backward pass: autograd adds dL/dparam into .grad
            grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # norm before clipping
            optimizer.step()  # update: for SGD, param -= lr * param.grad

            model.eval()
            with torch.no_grad():
                val_loss = criterion(model(data.x_val), data.y_val)
                row = [loss.detach(), val_loss, grad_norm, torch.tensor(lr, dtype=dtype, device=device)]
                if wb is not None:
                    row += [wb[0].detach().clone(), wb[1].detach().clone()]
                rows.append(torch.stack([r.to(dtype) for r in row]))
            model.train()

            last = epoch == tc.epochs - 1
            if tc.early_stop or epoch % sync_every == sync_every - 1 or last:
                if _collect(rows, names, history):
                    history.stop_reason = "non_finite"
                    break
                if tc.early_stop:
                    v = history["val_loss"][-1]
                    best_val, since_best = (v, 0) if v < best_val else (best_val, since_best + 1)
                    if since_best >= tc.patience:
                        history.stop_reason = "early_stop"
                        break
                now = time.perf_counter()
                if on_flush is not None and flush_every_s > 0 and now - last_flush >= flush_every_s \
                        and not last:
                    on_flush(flushed, {k: v[flushed:] for k, v in history.metrics.items()})
                    flushed, last_flush = history.epochs_run, now
    except KeyboardInterrupt:
        # Hand over what was computed before the interrupt, so the run's record is complete.
        _collect(rows, names, history)
        if on_flush is not None:
            on_flush(flushed, {k: v[flushed:] for k, v in history.metrics.items()})
        raise
    finally:
        if small:
            torch.set_num_threads(threads)
    history.seconds = time.perf_counter() - start
    return history
