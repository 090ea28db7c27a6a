"""What a run's steps say about its learning rate: the loss's growth per optimizer step, how
far the first plain step went towards the minimum (the room a larger lr has), an lr ramp's
reading, and the factor a stall's pace asks for."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from sweeps.config import OptimizerName
from sweeps.diagnose.curves import _clock, _lr_rising, _r
from sweeps.diagnose.params import Params as _Params, heavy_ball
from sweeps.diagnose.thresholds import Thresholds


def _steps_per_epoch(cfg: _Params) -> int:
    """Optimizer steps per epoch: training points over the batch size (1: full batch, or not
    known). A loss that grows by g per step grows by g**steps per epoch."""
    n, b = cfg.get_float("data.n_train"), cfg.get_float("train.batch_size")
    if not n or not b or b <= 0 or b >= n:
        return 1
    return int(math.ceil(n / b))


def _ramp(cfg: _Params, train: np.ndarray, lr: Optional[float],
          ev: dict[str, Any]) -> Optional[tuple[str, list[str]]]:
    """A schedule that raises the lr every epoch took the run from where it learned to where it
    blows up or swings: an lr range test. Its reading (Smith's): the lr at which the loss was
    lowest is the edge of stability, so hold a tenth of it, constant. (The cause, the fix.)"""
    clock = _clock(cfg, len(train))
    if lr is None or not _lr_rising(clock):
        return None
    finite = np.flatnonzero(np.isfinite(train))
    if len(finite) < 2:
        return None
    best = int(finite[np.argmin(train[finite])])
    steps = np.diff(clock[0])
    at_best = float(steps[min(max(best - 1, 0), len(steps) - 1)])
    rise = float(steps[-1] / steps[0])
    ev["lr_at_lowest_loss"] = _r(lr * at_best)
    cause = (f"The lr schedule raises the learning rate every epoch (x{rise:.3g} over the run): "
             f"the loss was lowest at epoch {best}, at an lr of {lr * at_best:.3g}, and the "
             "larger lrs after it overshoot.")
    return cause, [f"optimizer.lr={float(f'{lr * at_best / 10.0:.2g}')!r}",
                   "train.lr_schedule=constant"]


def _raise_factor(removed: float, t: Thresholds, cap: bool = True) -> float:
    """The power of ten by which to raise the lr of a run that removed this share of its
    reducible loss (exponential convergence, rate ~ lr), so that it removes stall_target.
    ``cap`` False: the factor itself (at least 2, at most max_lr_factor), not a power of ten."""
    need = _pace_need(removed, t)
    if not cap:
        return min(max(need, 2.0), t.max_lr_factor) if removed >= t.min_progress else 10.0
    return 10.0 if removed < t.min_progress else _pow10(need, t.max_lr_factor)


def _pace_need(removed: float, t: Thresholds) -> float:
    """How many times its pace (lr x epochs) a run that removed this share of its reducible
    loss needs to remove stall_target: -ln(1 - target) / kt, kt = -ln(1 - removed)."""
    kt = -math.log(max(1.0 - removed, 1e-12))
    return -math.log(1.0 - t.stall_target) / kt if kt > 0 else math.inf


def _nice(x: float) -> float:
    """x rounded up to 1, 2 or 5 times a power of ten (a number a person would type)."""
    p = 10.0 ** math.floor(math.log10(x))
    return next(m * p for m in (1, 2, 5, 10) if m * p >= x * (1 - 1e-9))


def _sgd_rho(train: np.ndarray, grads: np.ndarray, cfg: _Params, lr: float) -> Optional[float]:
    """SGD or momentum, full batch: how far the first step (lr * grad, clipped) went along its
    direction, as a multiple of the way to the minimum there: rho = 2 (1 - (L0 - L1) / G), G =
    lr |g0|**2 (see _plain_lr). None for another optimizer or without gradient norms."""
    name = str(cfg.get("optimizer.name") or "").lower()
    if name not in (OptimizerName.sgd, OptimizerName.momentum) or len(grads) == 0 \
            or len(train) < 2 or not math.isfinite(float(grads[0])) or grads[0] <= 0:
        return None
    g0, l0, l1 = float(grads[0]), float(train[0]), float(train[1])
    clip = cfg.get_float("train.clip_grad_norm")
    gain = lr * g0 * g0 * (min(1.0, clip / g0) if clip and clip > 0 else 1.0)
    return 2.0 * (1.0 - (l0 - l1) / gain) if gain > 0 else None


def _room(cfg: _Params, curves: tuple[np.ndarray, np.ndarray],
          lr: Optional[float]) -> Optional[float]:
    """How many times larger the lr can be before a plain first step reaches the minimum along
    its own direction (the gradient averages the curvatures, so the stiffest direction is
    already at least as close to its limit): (1 - beta) / rho, momentum's steps growing to
    1 / (1 - beta) times the first. Read only where the first step's drop is well resolved
    (float32 losses) and rho is a plausible length, with the schedule's first lr."""
    train, grads = curves
    if lr is None or len(train) < 2 or not (math.isfinite(train[0]) and train[0] > 0):
        return None
    if not 1e-4 <= (train[0] - train[1]) / train[0]:
        return None
    clock = _clock(cfg, len(train))
    first = float(clock[0][1]) if clock is not None else 1.0
    rho = _sgd_rho(train, grads, cfg, lr * first)
    if rho is None or not 0.0 < rho < 2.0:
        return None
    return (1.0 - heavy_ball(cfg)) / rho


def _pow10(x: float, cap: float) -> float:
    """The power of ten at or above x, at least 10 and at most cap."""
    if not math.isfinite(x):
        return cap
    return float(min(max(10.0 ** math.ceil(math.log10(max(x, 1.0)) - 1e-9), 10.0), cap))
