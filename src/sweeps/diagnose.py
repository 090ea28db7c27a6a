"""Label one run's loss curves with a symptom from the explainer's table (healthy, diverged,
stalled, oscillating, overfitting), its likely cause and the Hydra overrides that fix it.
Pure: numbers and an optional config mapping in, a Diagnosis out (no torch, no mlflow)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

SYMPTOMS = ("healthy", "diverged", "stalled", "oscillating", "overfitting")


@dataclass(frozen=True)
class Thresholds:
    """Every number the labeller decides with. Loss changes are measured against the run's own
    *reducible loss* (initial loss minus the floor the data allows), never in absolute units."""

    # Reading the curve
    smooth: int = 5  # epochs in the running median that reads levels off jittery curves
    judged_share: float = 0.5  # the last half of the run is judged for settling down
    min_epochs: int = 3  # fewer finite epochs cannot be judged (healthy, unless non-finite)
    level_q: float = 0.5  # a curve whose 2nd half fell by less than this share of its 1st half's
    #   drop has levelled off: its floor is extrapolated from it (else data.noise**2, else 0)
    nothing_to_learn: float = 1e-3  # reducible loss below this share of the initial loss: the
    #   run started at its floor, so nothing could be removed and nothing stalled
    # diverged
    blowup_ratio: float = 100.0  # smoothed end level above this multiple of the initial loss
    growth_ratio: float = 2.0  # or: end >= this multiple of the initial loss ...
    growth_steady: float = 0.9  # ... with at least this share of the judged epochs going up
    # oscillating (does not settle)
    osc_rise: float = 0.2  # the smoothed loss ends >= this * reducible above its judged minimum
    osc_swing: float = 0.1  # or: the loss sits >= this * reducible above its lowest value so
    osc_busy: float = 0.2  #   far in >= this share of the judged epochs (a wave or a zig-zag of
    #   half-amplitude B spends ~half its epochs up to 2B above; an isolated spike a few)
    osc_noise: float = 6.0  # both, if the judged epochs look like noise: also >= this many std
    #   devs of their jitter (a running median of iid noise wanders ~2.5 std devs)
    structure: float = 0.5  # patterned: some autocorrelation of the detrended judged epochs at
    max_lag: int = 8  #   lags 1..max_lag reaches this (iid jitter stays near 0; waves repeat)
    zigzag_flips: float = 0.85  # val zig-zag: this share of its differences flip sign in the
    #   tail (period 2: 1.0, iid jitter: 2/3) ...
    zigzag_amp: float = 0.05  # ... with half-amplitude >= this * reducible: weights still bounce
    #   across the minimum (gradient descent at lr * lambda_max ~ 2) even if train looks flat
    zigzag_tail: float = 0.25  # the val zig-zag is looked for in this last share of the run
    # overfitting
    overfit_rise: float = 0.1  # smoothed val ends >= this share above its minimum ...
    overfit_noise: float = 4.0  # ... and >= this many std devs of its epoch-to-epoch jitter ...
    overfit_sampling: float = 1.0  # ... and of a val MSE's sampling noise noise**2*sqrt(2/n_val)
    #   (with data.noise and data.n_val: a small val set moves that much between two fits)
    overfit_gap: float = 0.2  # ... the minimum at least this share of the run before the end
    overfit_gap_min: int = 5  # ... and at least this many epochs before it
    overfit_train_fall: float = 0.01  # ... while train fell >= this * reducible after it
    # stalled
    stall_share: float = 0.5  # less than this share of the reducible loss removed by the end
    # fixes
    stall_target: float = 0.8  # a stalled run's lr is raised to remove this share in its epochs
    min_progress: float = 1e-3  # removed share below which a stall says nothing about the lr
    max_lr_factor: float = 1000.0  # the largest lr change a fix proposes


DEFAULT = Thresholds()


@dataclass(frozen=True)
class Diagnosis:
    """The verdict for one run: a symptom from SYMPTOMS, why, the overrides that fix it
    (alternatives, the most likely to work first) and the numbers that decided it."""

    symptom: str
    cause: str
    fix: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def fix_str(self) -> str:
        """The fix overrides, space-separated ("" for a healthy run)."""
        return " ".join(self.fix)

    def markdown(self) -> str:
        """A short markdown explanation of the verdict and its evidence (a run description)."""
        lines = [f"**{self.symptom}**: {self.cause}", ""]
        if self.fix:
            lines += ["Fix, most likely first: " + ", ".join(f"`{f}`" for f in self.fix), ""]
        if self.evidence:
            lines += ["| evidence | value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in self.evidence.items()]
        return "\n".join(lines).rstrip() + "\n"


def diagnose(train_loss: Sequence[float], val_loss: Optional[Sequence[float]] = None, *,
             config: Any = None, grad_norm: Optional[Sequence[float]] = None,
             thresholds: Thresholds = DEFAULT) -> Diagnosis:
    """Label a run from its per-epoch curves.

    Args:
        train_loss: training loss per epoch (index 0 = before any step); may end at NaN/inf.
        val_loss: validation loss per epoch, optional.
        config: the run's config, nested (``{"optimizer": {"lr": 0.03}}``) or flat with MLflow's
            string values (``{"optimizer.lr": "0.03"}``); optional, missing keys are fine.
        grad_norm: gradient norm per epoch, optional (a non-finite norm counts as divergence).
        thresholds: the decision numbers; see Thresholds.

    Checks run in order: non-finite, blown up, not settling, overfitting, stalled, else healthy.
    """
    t, cfg = thresholds, _Params(config)
    train, val, grads = _array(train_loss), _array(val_loss), _array(grad_norm)
    ev: dict[str, Any] = {"epochs_run": int(len(train))}

    # 1. Non-finite numbers: the loop stops at the first one, so it is the last epoch recorded.
    bad = min(_first_nonfinite(a) for a in (train, val, grads))
    if bad < max(len(train), len(val), len(grads)):
        ev["first_nonfinite_epoch"] = int(bad)
        return _verdict("diverged", cfg, ev, t, ratio=_growth(train[:bad]))
    val = val[: len(train)]
    if len(train) < t.min_epochs:
        return _verdict("healthy", cfg, ev, t, note=f"Too few epochs ({len(train)}) to judge.")

    init = float(train[0])
    smooth = _smooth(train, t.smooth)
    end = float(smooth[-1])
    floor = _floor(train, smooth, cfg.get_float("data.noise"), t.level_q)
    reducible = init - floor
    trivial = reducible <= t.nothing_to_learn * abs(init)
    scale = max(reducible, t.nothing_to_learn * abs(init), 1e-12)
    removed = 1.0 if trivial else (init - end) / reducible
    ev.update(initial_loss=_r(init), final_loss=_r(train[-1]), floor=_r(floor),
              removed_share=_r(removed))
    if len(grads) and grads[0] > 0:
        ev["grad_norm_last_over_first"] = _r(grads[-1] / grads[0])

    # 2. Blew up: far above the start, or climbing steadily past it.
    cut = int(len(train) * (1 - t.judged_share))
    judged = train[cut:]
    ups = float(np.mean(np.diff(judged) > 0)) if len(judged) > 2 else 0.0
    if end > t.blowup_ratio * max(abs(init), 1e-12) or \
            (end >= t.growth_ratio * init > 0 and ups >= t.growth_steady):
        ev.update(end_over_initial=_r(end / init) if init else None, rising_share=_r(ups))
        return _verdict("diverged", cfg, ev, t, ratio=_growth(train))

    # 3. Does not settle: ends climbing back up, or spends much of the judged epochs well above
    #    the lowest loss reached so far (waves, zig-zag; an isolated spike that recovers does
    #    not), or val zig-zags: the weights still bounce across the minimum (lr*lam ~ 2).
    #    Only a tail without pattern (iid jitter) must also stand out from its own jitter.
    patterned = _max_autocorr(judged, t.max_lag) >= t.structure
    noise = 0.0 if patterned else t.osc_noise * _jitter(judged)
    climb = float(smooth[-1] - np.min(smooth[cut:]))
    above = judged - np.minimum.accumulate(judged)
    busy = float(np.mean(above >= max(t.osc_swing * scale, noise)))
    tail = int(len(train) * (1 - t.zigzag_tail))
    v_flips, v_half_amp = _zigzag(val[tail:])
    v_zigzag = v_half_amp if v_flips >= t.zigzag_flips else 0.0
    ev.update(tail_climb=_r(climb / scale), tail_busy_share=_r(busy),
              tail_max_swing=_r(float(np.max(above)) / scale),
              tail_sign_changes=_sign_changes(train[tail:]), tail_patterned=bool(patterned),
              val_tail_zigzag=_r(v_zigzag / scale))
    if (climb >= max(t.osc_rise * scale, noise)) or busy >= t.osc_busy or \
            v_zigzag >= t.zigzag_amp * scale:
        over = max(climb / (t.osc_rise * scale), float(np.max(above)) / (t.osc_swing * scale), 1.0)
        return _verdict("oscillating", cfg, ev, t, ratio=over)

    # 4. Train fits (not stalled) and keeps falling while val climbs clearly above its minimum,
    #    reached well before the end, by more than its jitter and the val set's sampling noise.
    if len(val) >= t.min_epochs and removed >= t.stall_share:
        vs = _smooth(val, t.smooth)
        i_min = int(np.argmin(vs))
        v_min, v_rise = float(vs[i_min]), float(vs[-1] - vs[i_min])
        fell = float(smooth[i_min] - smooth[-1])
        ev.update(val_min_epoch=i_min, val_rise=_r(v_rise / max(abs(v_min), 1e-12)),
                  train_fall_after_val_min=_r(fell / scale))
        epochs = cfg.get_int("train.epochs")
        caught = bool(cfg.get_bool("train.early_stop")) and epochs is not None and len(val) < epochs
        if (v_rise > 0 and v_rise >= t.overfit_rise * abs(v_min)
                and v_rise >= t.overfit_noise * _jitter(val)
                and v_rise >= t.overfit_sampling * _val_sampling_sd(cfg)
                and len(val) - 1 - i_min >= max(t.overfit_gap_min, t.overfit_gap * len(val))
                and fell >= t.overfit_train_fall * scale):
            if not caught:
                return _verdict("overfitting", cfg, ev, t)
            ev["early_stopped"] = True  # early stopping already ended it at the val minimum

    # 5. Barely moved: little of what the data allows was removed (smoothly: 3 found no swings).
    if removed < t.stall_share:
        return _verdict("stalled", cfg, ev, t, ratio=max(float(removed), 0.0))
    return _verdict("healthy", cfg, ev, t)


# --- causes and fixes ---------------------------------------------------------------------------


def _verdict(symptom: str, cfg: "_Params", ev: dict[str, Any], t: Thresholds, *,
             ratio: float = 1.0, note: str = "") -> Diagnosis:
    """Cause and fixes for a symptom. ``ratio``: diverged, the per-epoch growth of the loss;
    oscillating, how far the swing exceeds what is allowed; stalled, the share removed."""
    lr = cfg.get_float("optimizer.lr")
    if symptom == "healthy":
        return Diagnosis(symptom, note or "The loss fell to what the data allows and settled.",
                         [], ev)
    if symptom in ("diverged", "oscillating") and cfg.get_bool("train.zero_grad") is False:
        what = "blew up" if symptom == "diverged" else "swings without settling"
        cause = (f"The loss {what} because zero_grad() is missing: gradients accumulate across "
                 "epochs, so every step follows their running sum (undamped momentum).")
        second = "train.clip_grad_norm=1.0" if symptom == "diverged" else "train.lr_schedule=cosine"
        return Diagnosis(symptom, cause, ["train.zero_grad=true", *_lr(lr, 0.1), second], ev)
    if symptom == "diverged":
        # 10x, or more when the growth says 10x is not enough: gradient descent on a quadratic
        # grows the loss by (lr*lam - 1)**2 per epoch, so lr*lam ~ 1 + sqrt(growth); aim at 1.
        factor = _pow10(1 + math.sqrt(max(ratio, 0.0)), t.max_lr_factor)
        ev["lr_factor"] = factor
        cause = "The learning rate is too high: each step overshoots further and the loss blows up."
        return Diagnosis(symptom, cause, [*_lr(lr, 1 / factor), "train.clip_grad_norm=1.0"], ev)
    if symptom == "oscillating":
        # A bouncing step costs loss ~ lr**2: cut lr by sqrt(swing / allowed swing), at least 10x.
        factor = _pow10(math.sqrt(ratio), t.max_lr_factor)
        ev["lr_factor"] = factor
        cause = "The step size overshoots the minimum: the loss bounces instead of settling."
        return Diagnosis(symptom, cause, [*_lr(lr, 1 / factor), "train.lr_schedule=cosine"], ev)
    if symptom == "overfitting":
        cause = "The model memorises the training set: train loss falls, validation loss rises."
        return Diagnosis(symptom, cause, ["train.early_stop=true", "optimizer.weight_decay=0.01"],
                         ev)
    # Stalled. Converging exponentially, removed = 1 - exp(-k*T) with k ~ lr: the lr factor
    # that removes stall_target is -ln(1 - target) / (k*T). No measurable progress says nothing
    # about k: use 10.
    kt = -math.log(max(1.0 - ratio, 1e-12))
    need = -math.log(1.0 - t.stall_target) / kt if kt > 0 else math.inf
    factor = 10.0 if ratio < t.min_progress else _pow10(need, t.max_lr_factor)
    ev["lr_factor"] = factor
    cause = "The learning rate is too low (or the gradients vanish): the loss barely moves."
    return Diagnosis(symptom, cause, [*_lr(lr, factor), "data.normalize=true"], ev)


def _lr(lr: Optional[float], factor: float) -> list[str]:
    """``optimizer.lr=<lr * factor>`` written compactly (0.1 / 10 -> 0.01); [] without an lr."""
    if lr is None or not math.isfinite(lr) or lr <= 0:
        return []
    return [f"optimizer.lr={float(f'{lr * factor:.6g}')!r}"]


def _pow10(x: float, cap: float) -> float:
    """The power of ten at or above x, at least 10 and at most cap."""
    if not math.isfinite(x):
        return cap
    return float(min(max(10.0 ** math.ceil(math.log10(max(x, 1.0)) - 1e-9), 10.0), cap))


# --- curve measurements --------------------------------------------------------------------------


def _array(seq: Optional[Sequence[float]]) -> np.ndarray:
    if seq is None:
        return np.zeros(0)
    return np.asarray([math.nan if v is None else float(v) for v in seq], dtype=float)


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
    return np.array([np.median(pairs[max(0, i - h): i + h + 1]) for i in range(len(a))])


def _floor(train: np.ndarray, smooth: np.ndarray, noise: Optional[float], level_q: float) -> float:
    """The lowest loss this run could reach. The config's noise**2 (the irreducible MSE) when
    given, else 0, capped by what the run reached; but a curve that visibly levelled off is taken
    at its word (the sample's own noise and the model's capacity move the true floor), its
    geometric decay extrapolated from the start, middle and end levels."""
    low = float(np.min(smooth))
    base = min(noise * noise, low) if noise is not None and math.isfinite(noise) else min(0.0, low)
    n = len(train)
    a, b, c = float(train[0]), float(smooth[n // 2]), float(smooth[-1])
    d1, d2 = a - b, b - c
    if d1 <= 0:
        curve = -math.inf  # no fall in the first half: nothing to extrapolate
    elif d2 <= 0:
        curve = low  # levelled off, or back up: the lowest level seen
    elif d2 < level_q * d1:
        q = d2 / d1  # the share of the first half's drop that the second half repeated
        curve = c - d2 * q / (1 - q)  # plus the rest of that geometric series
    else:
        curve = -math.inf  # still falling about as fast: extrapolating would be a guess
    return float(min(max(base, curve), low))


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


# --- config access -------------------------------------------------------------------------------


class _Params:
    """Dotted-key reads from a nested mapping (or attribute tree) or MLflow's flat string params."""

    def __init__(self, config: Any) -> None:
        self.config = config if config is not None else {}

    def get(self, key: str) -> Any:
        node: Any = self.config
        if isinstance(node, Mapping) and key in node:
            return node[key]
        for part in key.split("."):
            if isinstance(node, Mapping):
                if part not in node:
                    return None
                node = node[part]
            elif hasattr(node, part):
                node = getattr(node, part)
            else:
                return None
        return node

    def get_float(self, key: str) -> Optional[float]:
        v = self.get(key)
        if v is None or isinstance(v, bool):
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            return None  # "None", "null", "" and other non-numbers

    def get_int(self, key: str) -> Optional[int]:
        v = self.get_float(key)
        return int(v) if v is not None and math.isfinite(v) else None

    def get_bool(self, key: str) -> Optional[bool]:
        v = self.get(key)
        if isinstance(v, str):
            return {"true": True, "false": False, "1": True, "0": False}.get(v.strip().lower())
        return bool(v) if isinstance(v, (bool, int, np.bool_)) else None
