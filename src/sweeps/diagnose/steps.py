"""What a run's steps say about its learning rate: the loss's growth per optimizer step, how
far the first plain step went towards the minimum (the room a larger lr has), an lr ramp's
reading, the factor a stall's pace asks for, and whether plain steps (zero_grad() restored)
would be too long or too short at this lr."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

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


# The largest float32: a loss that passes it is inf, and NaN follows (inf - inf, 0 * inf).
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _overflow_growth(first_bad: int, steps: int) -> float:
    """The least per-step growth of a loss non-finite from its first epoch (no growth to read off
    the curve), where that epoch's minibatch losses (the first taken before any update) are what
    it logged: up to steps - 1 updates took the loss past float32's range from a start no higher
    than that range's square root (1.8e19). 1 (nothing read) for a full-batch first epoch (its
    one loss may come before any update) or a loss that was finite first: a NaN after finite
    epochs may be a log(0) of a saturated output rather than an overflow."""
    if first_bad == 0 and steps >= 2:
        return math.sqrt(_FLOAT32_MAX) ** (1.0 / (steps - 1))
    return 1.0


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


def _trough_pace(train: np.ndarray, cfg: _Params,
                 t: Thresholds) -> Optional[tuple[float, int]]:
    """SGD or momentum with zero_grad() missing: how many time constants of plain steps the run's
    epochs hold, read off the loss's first trough, and that trough's epoch (None without one,
    or for another optimizer).

    The summed gradient makes gradient descent an undamped oscillator: on a quadratic with
    curvature lam each direction swings as cos(w t), w**2 = lr lam / (1 - beta) per step, so
    the loss first bottoms out after t* = pi / (2 w) steps, where plain steps (momentum's too)
    shrink that direction's loss by e per 1 / w**2 = (2 t* / pi)**2 steps. The trough is where
    the loss first climbs back by osc_swing of what it had removed; its epoch's loss is the mean
    over that epoch's steps, so t* is taken at the epoch's middle step."""
    name = str(cfg.get("optimizer.name") or "").lower()
    if name not in (OptimizerName.sgd, OptimizerName.momentum) or len(train) < 3:
        return None
    best, at = float(train[0]), 0
    for i in range(1, len(train)):
        x = float(train[i])
        if not math.isfinite(x):
            return None
        if x < best:
            best, at = x, i
        elif x - best >= t.osc_swing * (float(train[0]) - best) > 0:
            break
    else:
        return None
    if at == 0:
        return None
    steps = _steps_per_epoch(cfg)
    epochs = cfg.get_int("train.epochs") or len(train)
    first = at * steps + (steps - 1) / 2
    return epochs * steps / (2 * first / math.pi) ** 2, at


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


def _plain_lr(curves: tuple[np.ndarray, np.ndarray], cfg: _Params, t: Thresholds,
              ev: dict[str, Any]) -> tuple[list[str], str]:
    """Is the lr wrong for plain steps too, i.e. once zero_grad() is restored? (overrides, the
    sentence that says why). Read off the first update, which with zero_grad() missing is
    exactly the plain one: nothing has accumulated before it. Along its direction the loss is
    a parabola: L(s) = L0 - G s + C s**2 / 2 for s times the step, G = grad . step, so the step
    went rho = C / G times as far as the minimum along it, rho = 2 (1 - (L0 - L1) / G).
      * SGD (and momentum, whose first step is plain too): step = lr * grad, G = lr |g0|**2
        with g0 the first gradient norm (clipped: times min(1, clip / g0)); rho = lr times
        the curvature the gradient meets, at most lr * lam_max.
      * any optimizer: L1 > L0 means rho > 2; for a step much longer than the way to the
        minimum the loss grows as (rho - 1)**2, so rho ~ 1 + sqrt(L1 / L0) (Adam's first step
        is lr * sign(grad), RMSprop's lr / sqrt(1 - alpha) * sign(grad): G is not known).
    rho >= overshoot, or under momentum rho / (1 - beta) (its steady steps, where the gradient
    keeps its sign, are 1 / (1 - beta) times the first): the lr is cut by the power of ten at or
    above that (at least 10x).
    Otherwise the share of the reducible loss (taken down to the lowest loss of the run, no
    lower than the floor) the first epoch removed, f1 (its S minibatch steps already summing
    1..S gradients: (S + 1) / 2 times the plain progress), is the most plain steps remove: kept
    up for the run's epochs it gets through k*T = -T ln(1 - f1) time constants (momentum's
    steps grow to 1 / (1 - beta) times the first). Fewer than first_step_epochs: the lr is
    raised as for a stall that removed 1 - exp(-k*T). For SGD and momentum the loss's first
    trough gives a second reading (_trough_pace), of the direction that carries the loss rather
    than a bound: the slower of the two governs."""
    train, grads = curves
    lr = cfg.get_float("optimizer.lr")
    if len(train) < 2 or lr is None or not math.isfinite(float(train[0])):
        return [], ""
    l0, l1 = float(train[0]), float(train[1])
    rho = None
    if not math.isfinite(l1):
        rho = math.inf
    elif (sgd := _sgd_rho(train, grads, cfg, lr)) is not None:
        rho = sgd
    elif l1 > l0 > 0:
        rho = 1.0 + math.sqrt(l1 / l0)
    beta = heavy_ball(cfg)
    # Momentum's steps, where the gradient keeps its sign, grow to 1 / (1 - beta) times the
    # first: its steady steps go that many times as far as the first did.
    steady = rho / (1.0 - beta) if rho is not None else None
    if rho is not None:
        ev["first_step_overshoot"] = _r(min(rho, 1e6))
        if beta > 0:
            ev["momentum_step_overshoot"] = _r(min(steady, 1e6))
    if steady is not None and steady >= t.overshoot:
        factor = _pow10(steady, t.max_lr_factor)
        ev["lr_factor"] = factor
        how = "plain steps overshoot too." if steady == rho else (
            f"with momentum {beta:g} its steady steps, {1 / (1 - beta):.3g} times the first, go "
            f"{min(steady, 1e6):.3g} times that far: past the minimum.")
        return _lr(lr, 1 / factor), (
            " The learning rate is too high as well: the first update, a plain gradient step "
            f"(nothing had accumulated yet), went {min(rho, 1e6):.3g} times as far as the "
            f"minimum along its own direction; {how}")
    low = float(np.nanmin(np.where(np.isfinite(train), train, np.nan)))
    if not (l0 > low and l1 < l0):
        return [], ""
    f1 = min((l0 - l1) / (l0 - low), 1.0)
    epochs = cfg.get_int("train.epochs") or len(train)
    # With S minibatch steps an epoch, the first epoch's k-th step already follows the sum of k
    # gradients: it moved (S + 1) / 2 times as far as S plain steps would have.
    steps = _steps_per_epoch(cfg)
    kt = -epochs * math.log(max(1.0 - f1, 1e-300)) / max(1.0 - beta, 1e-3) * 2 / (steps + 1)
    ev["first_step_time_constants"] = _r(min(kt, 1e6))
    trough = _trough_pace(train, cfg, t)  # the slower reading governs (the first is a bound)
    if trough is not None and trough[0] < kt:
        kt = ev["trough_time_constants"] = _r(trough[0])
        why = (f"the summed gradient took the loss to its first trough only at epoch {trough[1]} "
               f"(a quarter swing), so plain steps at this lr get through {kt:.2g} time "
               f"constants in {epochs} epochs")
    else:
        why = ("the first update, a plain gradient step (nothing had accumulated yet), removed "
               f"{f1:.2g} of the reducible loss; kept up for {epochs} epochs that is {kt:.2g} "
               "time constants")
    if kt >= t.first_step_epochs:
        return [], ""
    factor = _raise_factor(1.0 - math.exp(-kt), t)
    ev["lr_factor"] = factor
    return _lr(lr, factor), (f" The learning rate is too low as well: {why}, a stall once the "
                             "steps are plain.")


def _lr_set(fix: Sequence[str]) -> Optional[float]:
    """The lr an ``optimizer.lr=`` override in a fix sets (None without one, or unreadable)."""
    try:
        return next((float(o.split("=", 1)[1]) for o in fix if o.startswith("optimizer.lr=")),
                    None)
    except ValueError:
        return None


def _lr(lr: Optional[float], factor: float) -> list[str]:
    """``optimizer.lr=<lr * factor>`` written compactly (0.1 / 10 -> 0.01); [] without an lr."""
    if lr is None or not math.isfinite(lr) or lr <= 0:
        return []
    return [f"optimizer.lr={float(f'{lr * factor:.6g}')!r}"]


def _blind_raise(fix: list[str], ev: dict[str, Any], cfg: _Params, t: Thresholds,
                 epochs: int) -> Optional[tuple[list[str], str]]:
    """A stall's lr raise as large as a fix guesses (max_lr_factor: the pace asked for that or
    more) that nothing measured bounds, in a fix that stops early: (the fix with a decade of it
    given to the epochs, the sentence that says why), or None. The pace reading (progress ~ lr
    x epochs) holds while the lr stays below what the curvature allows, and a stalled curve
    shows none of that limit: the first plain step was not read (lr_room), nor was the lr read
    off a running sum's first update (zero_grad() missing). A plateau's far side is sharper
    than the flat run crossed, so a jump of three decades often lands where the run swings.
    Early stopping ends the run where val stops improving, so the extra epochs cost only what
    the run still gains from them: the lr goes a decade lower and the cap 10x higher (at most
    max_epochs_factor x the run's)."""
    lr, new = cfg.get_float("optimizer.lr"), _lr_set(fix)
    if lr is None or new is None or not (lr > 0 and new >= t.max_lr_factor * lr * (1 - 1e-9)) \
            or "train.early_stop=true" not in fix or "lr_room" in ev or not epochs \
            or cfg.get_bool("train.zero_grad") is False:
        return None
    set_to = next((int(o.split("=", 1)[1]) for o in fix if o.startswith("train.epochs=")), None)
    cap = 10 * (set_to if set_to is not None else int(epochs * t.stop_cap))
    if cap > t.max_epochs_factor * epochs:
        return None
    ev.update(lr_factor=_r(new / lr / 10), epochs_factor=_r(cap / epochs))
    out = [o for o in fix if not o.startswith(("optimizer.lr=", "train.epochs="))]
    return _lr(new, 0.1) + out + [f"train.epochs={cap}"], (
        f" A {new / lr:,.0f}x lr is a blind jump: the flat curve shows nothing of the curvature "
        f"beyond it, where a run often swings. With early stopping on guard the lr goes a decade "
        f"lower ({new / lr / 10:,.0f}x) and the epochs up to {cap}, a cap the run stops short "
        "of once val stops improving.")
