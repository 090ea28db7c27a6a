"""Measurements read off loss curves (pure numpy)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Optional, Sequence

import numpy as np

from sweeps.config import ConfigError, Schedule, TrainConfig, lr_at
from sweeps.diagnose.params import Params as _Params
from sweeps.diagnose.thresholds import Thresholds


def _array(seq: Optional[Sequence[float]]) -> np.ndarray:
    if seq is None:
        return np.zeros(0)
    return np.asarray([math.nan if v is None else float(v) for v in seq], dtype=float)


def _gaps_filled(a: np.ndarray, ran: Optional[int] = None) -> tuple[np.ndarray, int]:
    """A curve with NaN where nothing was logged (validation every k epochs, or from the second
    epoch on), its gaps filled, and how many there were. A loop stops at its first non-finite
    loss, so a NaN that a finite value follows is a gap, not a blow-up. So, for a curve logged
    beside the train loss (``ran``: the run's epochs), are NaN after its last value at epochs
    the run went on past, and then one at the run's last epoch too (a curve with gaps is
    logged every k epochs). Gaps between logged values are filled linearly, leading ones with
    the first logged value; trailing ones are cut off, and a curve of a single logged value is
    no curve (empty). Infinite values are kept: they are a blow-up wherever they are."""
    nan = np.isnan(a)
    if not nan.any():
        return a, 0
    logged = np.flatnonzero(np.isfinite(a))
    last = int(logged[-1]) if len(logged) else -1
    inner = np.flatnonzero(nan[: last + 1])
    tail = a[last + 1: ran] if ran is not None else a[:0]
    cut = bool(np.isnan(tail).all() and (len(tail) >= 2 or (len(tail) == 1 and len(inner))))
    n = len(inner) + (len(tail) if cut else 0)
    if n == 0:
        return a, 0
    if len(logged) < 2:
        return (np.zeros(0), n) if ran is not None else (a, 0)
    out = a[: last + 1].copy() if cut else a.copy()
    out[inner] = np.interp(inner, logged, a[logged])
    return out, n


def _first_nonfinite(a: np.ndarray) -> int:
    bad = np.flatnonzero(~np.isfinite(a))
    return int(bad[0]) if len(bad) else 1 << 62


def _smooth(a: np.ndarray, w: int) -> np.ndarray:
    """Running median (centred, shrinking at the ends) of neighbour averages: kills jitter and
    period-2 zig-zag (a median alone keeps one phase of it), keeps slower waves and levels."""
    if len(a) < 2:
        return a.copy()
    pairs = np.r_[a[:1], (a[1:] + a[:-1]) / 2]
    h = min(max(w, 1) // 2, len(a) // 8)  # short curves: a wide window would flatten them
    n = len(a)
    if h == 0:
        return pairs.copy()
    out = np.empty(n)
    if n > 2 * h:  # full windows at once; only the shrinking ends one by one
        out[h:n - h] = np.median(np.lib.stride_tricks.sliding_window_view(pairs, 2 * h + 1), axis=1)
    ends = [i for i in range(n) if i < h or i >= n - h]
    for i in ends:
        out[i] = np.median(pairs[max(0, i - h): i + h + 1])
    return out


def _level(a: np.ndarray, w: int) -> np.ndarray:
    """Running median of w epochs (centred, shrinking at the ends): a validation curve's level,
    read as the benchmark's rules read it. Without _smooth's neighbour averages (kept for the
    train curve's period-2 zig-zag) its last value describes the curve one epoch back, not 1.5:
    a val loss still climbing when the run stops is read nearer the height it reached."""
    h, n = max(w, 1) // 2, len(a)
    if n <= 2 * h:
        return np.array([np.median(a[max(0, i - h): i + h + 1]) for i in range(n)])
    out = np.empty(n)
    out[h:n - h] = np.median(np.lib.stride_tricks.sliding_window_view(a, 2 * h + 1), axis=1)
    for i in [*range(h), *range(n - h, n)]:
        out[i] = np.median(a[max(0, i - h): i + h + 1])
    return out


def _centre(i: int, n: int, w: int) -> float:
    """The epoch _smooth's value at index i describes on a steady slope: the middle of its window
    of neighbour averages, each half an epoch back (i - 0.5 inside; at the last epoch, where the
    window is cut short, a whole epoch back)."""
    h = min(max(w, 1) // 2, n // 8)
    return max((max(0, i - h) + min(n - 1, i + h)) / 2 - 0.5, 0.0) if i > 0 else 0.0


def _clock(cfg: "_Params", n: int) -> Optional[tuple[np.ndarray, float]]:
    """The run's time in epochs at its starting lr, and the span the horizon multiplies: entry e
    of the clock is the sum of the lr multipliers of the e steps taken before epoch e's loss
    (None without a schedule or an optimizer that decays its own steps, or with a schedule this
    project does not know). Gradient steps move the weights in proportion to the lr, so a curve
    flattening because its lr decayed has not arrived anywhere: read on this clock, its slope is
    what the starting lr would still remove.
      * an lr schedule: lr_at's multipliers; the horizon is the run's epochs at the starting lr
        (held constant, the schedule's decay is no excuse for a stall);
      * Adagrad divides each step by the root of the squared gradients summed so far, so with
        gradients of a steady size its step at epoch e is 1 / sqrt(e + 1) of its first: a
        schedule built into the optimizer. No constant lr exists to hold, so the horizon is the
        run's own clock: 10x the lr goes 10x as far on it (10x the epochs only sqrt(10)x)."""
    kind = cfg.get("train.lr_schedule")
    name = str(cfg.get("optimizer.name") or "").lower()
    scheduled = kind is not None and str(kind) != Schedule.constant
    adagrad = name == "adagrad"
    if not (scheduled or adagrad) or n < 2:
        return None
    steps = np.ones(n - 1)
    if scheduled:
        gamma, step = cfg.get_float("train.lr_gamma"), cfg.get_int("train.lr_step_size")
        train = SimpleNamespace(lr_schedule=str(kind), epochs=cfg.get_int("train.epochs") or n,
                                lr_gamma=TrainConfig.lr_gamma if gamma is None else gamma,
                                lr_step_size=step or TrainConfig.lr_step_size)
        try:
            steps = np.array([lr_at(e, 1.0, train) for e in range(n - 1)], dtype=float)
        except (ConfigError, TypeError, ValueError, OverflowError):
            return None
    if adagrad:
        steps = steps / np.sqrt(np.arange(1, n))
    if not np.all(np.isfinite(steps)) or np.sum(steps) <= 0:
        return None
    clock = np.r_[0.0, np.cumsum(steps)]
    return clock, float(clock[-1] if adagrad else n - 1)


def _lr_rising(clock: Optional[tuple[np.ndarray, float]]) -> bool:
    """The schedule's lr is higher at the end than at the start (a ramp still going up)."""
    c = clock[0] if clock is not None else np.zeros(0)
    return len(c) > 2 and c[-1] - c[-2] > c[1] - c[0]


def _end_share(smooth: np.ndarray, floor: float) -> Optional[float]:
    """The share of the reducible loss the run removes at the pace of its last quarter: the
    rate at which what is left above the floor shrank there, k, kept up for the whole run,
    1 - exp(-k T). None where the last quarter did not shrink it."""
    n = len(smooth)
    q = max(n // 4, 1)
    if n < 4:
        return None
    a, b = float(smooth[-q - 1]) - floor, float(smooth[-1]) - floor
    if not (a > b > 0):
        return None
    return 1.0 - math.exp(-math.log(a / b) * (n - 1) / q)


def _floor(train: np.ndarray, smooth: np.ndarray, noise: Optional[float], jitter: float,
           t: Thresholds, clock: Optional[tuple[np.ndarray, float]] = None) -> tuple[float, float]:
    """(the loss this run is heading for, the per-quarter ratio of its tail's drops).

    Read off the curve's own deceleration, never off the lowest loss reached: a curve that is
    still falling at the end has not arrived. Near a minimum gradient descent removes a fixed
    share of what is left per epoch, so the drops of the lowest level reached by each quarter,
    d1..d4, shrink geometrically, and the loss still to come is the rest of that series over
    the horizon (t.horizon x the run's epochs): d4 * (r + r**2 + ... + r**m), m quarters. r is
    the slower of the tail's ratio d4 / d3 and the run's average (d4 / d1) ** (1/3): the slowest
    decay seen governs what is left (a mix of fast and slow modes slows down over time; a nearly
    straight fall has r ~ 1). A last quarter flat within the jitter has levelled off: the lowest
    level seen. A loss that is never negative (MSE) cannot end below 0; the data's noise**2 is
    used only for a curve that did not fall at all (it sat at its floor if at or below it).
    A ratio that is still rising (d3 / d2 < d4 / d3) is followed as it rises (_power_tail): a
    constant r is only the least that log-convex drops can leave. Drops that grow (r > 1: the
    loss is speeding up, leaving a plateau or a saddle, as deep sigmoid nets do) are followed as
    they grow, at most doubling a quarter, down to the least the loss can be: a run that is
    speeding up at its end has not arrived.
    With an lr schedule (or Adagrad's own decay) the quarters and the horizon are read on the
    run's clock (_clock): the horizon is t.horizon x the clock's span."""
    low = float(np.min(smooth))
    init, n = float(train[0]), len(train)
    fallen = init - low
    if fallen <= 0:  # no net fall: no shape to read
        flat = min(noise * noise, low) if noise is not None and math.isfinite(noise) else 0.0
        return float(min(flat, low)), 0.0
    # A curve that fell a share of its start this small has shown no floor, only that its
    # steps do nothing (a tiny lr, vanishing gradients, a plateau): what it could reach is not
    # known, so its floor is the least the loss can be (the data's noise**2 when known, else 0
    # for a loss that is never negative).
    if fallen < t.barely_moved * abs(init) and float(np.nanmin(train)) >= 0:
        flat = noise * noise if noise is not None and math.isfinite(noise) else 0.0
        return float(min(flat, low)), 0.0
    if n < 8:  # too short for quarters: take it at its word
        return low, 0.0
    best = np.minimum.accumulate(smooth)  # progress: the lowest level reached so far (a spike
    #   or a swing later in the run is judged as such, not read as a change of course)
    if clock is None:
        at = [round(k * (n - 1) / 4) for k in (1, 2, 3, 4)]
        m = 4 * (t.horizon - 1)  # quarters still to come within the horizon
    else:
        clock, span = clock
        at = [min(int(np.searchsorted(clock, k * clock[-1] / 4)), n - 1) for k in (1, 2, 3, 4)]
        m = max(4 * (t.horizon * span / clock[-1] - 1), 0.0)
    q = [init] + [float(best[i]) for i in at]
    drops = [q[k] - q[k + 1] for k in range(4)]
    sig = max(t.level_noise * jitter, t.nothing_to_learn * fallen)
    if drops[3] <= sig:
        return low, 0.0
    # Each drop over the same length of time: a short run's quarters are whole epochs of
    # unequal lengths (10 epochs: 2, 2, 3, 2), and a straight fall must not read as slowing.
    # Each level is read at the epoch it describes (_centre): the last one lags a whole epoch.
    epochs = np.asarray([0.0] + [_centre(i, n, t.smooth) for i in at])
    times = epochs if clock is None else np.interp(epochs, np.arange(n), clock)
    spans = np.diff(times)
    if np.any(spans <= 0):
        return low, 0.0
    d1, _, d3, d4 = (d * (times[-1] / 4) / span for d, span in zip(drops, spans))
    r = max(d4 / d3 if drops[2] > sig else math.inf, (d4 / d1) ** (1 / 3) if d1 > 0 else math.inf)
    # Never below 0 for a loss that is never negative; one that can be is not followed faster
    # than a straight line (no least value to stop at).
    lower = 0.0 if float(np.nanmin(train)) >= 0 else -math.inf
    g = min(r, 2.0 if lower == 0.0 else 1.0)  # a tail speeding up is followed as it does
    rest = d4 * (m if g == 1 else g * (1 - g**m) / (1 - g))
    if r < 1 and drops[1] > sig and drops[2] > sig:
        d2 = drops[1] * (times[-1] / 4) / spans[1]
        rest = max(rest, d4 * _power_tail(d2, d3, d4, m))
    return float(min(max(low - rest, lower), low)), r


def _power_tail(d2: float, d3: float, d4: float, m: float) -> float:
    """The drops still to come, in units of the last quarter's d4, when the ratio of successive
    quarters' drops is still rising (0 when it is not).

    Gradient descent on a quadratic removes a fixed share per epoch in each direction, so the
    drops are a mixture of geometric series: log-convex, their ratio rising towards the slowest
    direction's as the faster ones die out. A few directions: the ratio levels off and a
    constant r (the last one) follows the tail. A broad spread of curvatures down to nearly
    flat ones (many weights, about as many points as weights): the ratio keeps rising, like a
    power law's d_k ~ (k + s)**-p over quarters k, and that law, fitted exactly to the last
    three drops, is followed for the m quarters of the horizon. Only p > 1 is a tail at all
    (slower drops would sum without bound): a ratio that jumped (a fast direction just died
    out) is a change of regime, not a power law, and the constant r stands."""
    rho3, rho4 = d3 / d2, d4 / d3
    if not 0 < rho3 < rho4 < 1:
        return 0.0
    # c = k + s of the last drop: log rho4 / log rho3 = log(1 - 1/c) / log(1 - 1/(c - 1)),
    # which rises from 0 (c -> 2) to 1 (c -> inf, a geometric series).
    want = math.log(rho4) / math.log(rho3)
    lo, hi = 2.0 + 1e-9, 1e6
    if math.log1p(-1 / hi) / math.log1p(-1 / (hi - 1)) <= want:
        return 0.0
    for _ in range(100):
        c = math.sqrt(lo * hi)
        lo, hi = (c, hi) if math.log1p(-1 / c) / math.log1p(-1 / (c - 1)) < want else (lo, c)
    c = math.sqrt(lo * hi)
    p = math.log(rho4) / math.log1p(-1 / c)
    if p <= 1:
        return 0.0
    k = np.arange(1, int(m) + 1)
    return float(np.sum((c / (c + k)) ** p))


def _lost_ground(train: np.ndarray, smooth: np.ndarray, cut: int) -> float:
    """How far the judged epochs' typical level (their median) sits above the lowest smoothed
    level reached before them: progress the run made and then lost (a loss that went back up
    and stays up, however irregular its swings); 0 when it is not above it by more than the
    judged epochs' own jitter."""
    if cut < 1 or len(train) - cut < 2:
        return 0.0
    judged = train[cut:]
    lost = float(np.median(judged) - np.min(smooth[:cut + 1]))
    return lost if lost > _jitter(judged) else 0.0


def _jitter(a: np.ndarray) -> float:
    """Robust std of epoch-to-epoch noise (median absolute difference, for Gaussian jitter)."""
    d = np.diff(a)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2)) if len(d) else 0.0


def _max_autocorr(a: np.ndarray, max_lag: int) -> float:
    """Largest |autocorrelation| at lags 1..max_lag after removing a straight-line trend."""
    n = len(a)
    if n < 8:
        return 1.0  # too short to tell jitter from a pattern: do not excuse it as jitter
    x = np.arange(n)
    r = a - np.polyval(np.polyfit(x, a, 1), x)
    var = float(np.dot(r, r))
    if var <= 1e-30 * max(float(np.dot(a, a)), 1e-300):
        return 0.0
    return max(abs(float(np.dot(r[:-k], r[k:]))) / var for k in range(1, min(max_lag, n // 2) + 1))


def _zigzag(tail: np.ndarray) -> tuple[float, float]:
    """(share of consecutive differences that flip sign, median half-amplitude of the steps)."""
    d = np.diff(tail)
    if len(d) < 4:
        return 0.0, 0.0
    return float(np.mean(d[1:] * d[:-1] < 0)), float(np.median(np.abs(d)) / 2)


def _sign_changes(a: np.ndarray) -> int:
    d = np.diff(a)
    return int(np.sum(d[1:] * d[:-1] < 0)) if len(d) > 1 else 0


def _growth(a: np.ndarray) -> float:
    """Per-epoch growth factor of the loss from its lowest point to its last finite value."""
    a = a[np.isfinite(a)]
    if len(a) < 2:
        return 1.0
    i = int(np.argmin(a))
    if i >= len(a) - 1 or a[i] <= 0:
        return 1.0
    return float((a[-1] / a[i]) ** (1.0 / (len(a) - 1 - i)))


def _val_sampling_sd(cfg: "_Params") -> float:
    """Std of a val MSE over n_val points with Gaussian label noise (0 without the config)."""
    noise, n_val = cfg.get_float("data.noise"), cfg.get_float("data.n_val")
    if noise is None or not n_val or n_val <= 0:
        return 0.0
    return noise * noise * math.sqrt(2.0 / n_val)


def _r(x: float) -> float:
    """Four significant digits: evidence to read, not to recompute from."""
    return float(f"{float(x):.4g}")


