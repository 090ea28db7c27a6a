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
    """Every number the labeller decides with. Losses are compared with the run's own scale, the
    *reducible loss* (initial loss minus the floor the data allows), never with absolute values."""

    smooth: int = 5  # epochs in the running median that reads levels off jittery curves
    judged_share: float = 0.5  # the last half of the run is judged for settling down
    blowup_ratio: float = 100.0  # diverged: smoothed end level >= this multiple of the initial loss
    growth_ratio: float = 2.0  # diverged: end >= this multiple of the initial loss ...
    growth_steady: float = 0.9  # ... and at least this share of the judged epochs went up
    stall_share: float = 0.5  # stalled: less than this share of the reducible loss removed
    osc_rise: float = 0.2  # oscillating: the smoothed loss climbs back by >= this * reducible ...
    osc_noise: float = 6.0  # ... and, if the judged epochs look like noise, by >= this many
    #   std devs of their jitter (the running median of iid noise wanders ~2.5 std devs)
    structure: float = 0.5  # noise-like: every autocorrelation of the detrended judged epochs
    max_lag: int = 8  #   at lags 1..max_lag is below `structure` (waves and zig-zags repeat)
    zigzag_flips: float = 0.85  # zig-zag: share of epoch-to-epoch differences that flip sign
    #   (period-2 zig-zag: 1.0; independent jitter: 2/3)
    zigzag_amp: float = 0.05  # ... with a half-amplitude >= this * reducible in the judged tail
    zigzag_tail: float = 0.25  # the zig-zag is looked for in this last share of the run
    overfit_rise: float = 0.1  # overfitting: smoothed val ends >= this share above its minimum ...
    overfit_noise: float = 4.0  # ... and >= this many std devs of the val curve's jitter ...
    overfit_sampling: float = 1.0  # ... and of a val MSE's sampling noise, noise**2*sqrt(2/n_val)
    #   (given data.noise and data.n_val: a small val set moves by that much between fits)
    overfit_drop: float = 0.25  # ... after val first fell by >= this share of the rise (a U)
    overfit_gap: float = 0.2  # ... with the minimum at least this share of the run before the end
    overfit_gap_min: int = 5  # ... and at least this many epochs before it
    overfit_train_fall: float = 0.01  # ... while train fell >= this * reducible after the minimum
    nothing_to_learn: float = 1e-3  # reducible below this share of the initial loss: nothing to do
    min_progress: float = 1e-3  # share removed below which a stall says nothing about the lr
    max_lr_factor: float = 1000.0  # the largest lr change a fix proposes


DEFAULT = Thresholds()


@dataclass(frozen=True)
class Diagnosis:
    """The verdict for one run: a symptom from SYMPTOMS, why, and overrides that fix it
    (alternatives, most likely first), with the numbers that decided it."""

    symptom: str
    cause: str
    fix: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def fix_str(self) -> str:
        """The fix overrides, space-separated (empty for a healthy run)."""
        return " ".join(self.fix)

    def markdown(self) -> str:
        """A short markdown explanation of the verdict and its evidence (a run description)."""
        lines = [f"**{self.symptom}**: {self.cause}", ""]
        if self.fix:
            lines += ["Fix (first is most likely to work): " + ", ".join(f"`{f}`" for f in self.fix), ""]
        lines += [f"- {k}: {_fmt(v)}" for k, v in self.evidence.items()]
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
        grad_norm: gradient norm per epoch, optional (evidence only).
        thresholds: the decision numbers; see Thresholds.
    """
    t = thresholds
    cfg = _Params(config)
    train, val = _array(train_loss), _array(val_loss)
    grads = _array(grad_norm)
    ev: dict[str, Any] = {"epochs_run": int(len(train))}
    if len(train) == 0 or not math.isfinite(train[0]):
        bad = len(train) > 0
        ev.update(first_nonfinite_epoch=0) if bad else None
        return _verdict("diverged" if bad else "healthy", cfg, ev, t,
                        note="" if bad else "no epochs recorded")

    # 1. Non-finite numbers: the loop stops at the first one, so it is the last epoch recorded.
    bad = min([_first_nonfinite(a) for a in (train, val, grads)])
    if bad < len(train) or bad < max(len(val), len(grads)):
        ev["first_nonfinite_epoch"] = int(bad)
        return _verdict("diverged", cfg, ev, t, growth=_growth(train[:bad]))
    val = val[: len(train)]

    init = float(train[0])
    smooth = _running_median(train, t.smooth)
    end = float(np.median(train[-t.smooth:]))
    floor = _floor(train, smooth, cfg.get_float("data.noise"))
    reducible = init - floor
    scale = max(reducible, t.nothing_to_learn * abs(init), 1e-12)
    removed = 1.0 if reducible <= t.nothing_to_learn * abs(init) else (init - end) / reducible
    ev.update(initial_loss=init, final_loss=float(train[-1]), floor=floor,
              removed_share=_r(removed))

    # 2. Blew up: far above the start, or climbing steadily past it.
    judged = train[int(len(train) * (1 - t.judged_share)):]
    ups = float(np.mean(np.diff(judged) > 0)) if len(judged) > 2 else 0.0
    if end >= t.blowup_ratio * abs(init) or (end >= t.growth_ratio * init > 0 and ups >= t.growth_steady):
        ev.update(end_over_initial=_r(end / init) if init else None, rising_share=_r(ups))
        return _verdict("diverged", cfg, ev, t, growth=_growth(train))

    # 3. Does not settle: climbs back up (waves, or zig-zag then climb), or zig-zags in the tail;
    #    a zig-zag in val alone means the weights still bounce across the minimum (lr*lam ~ 2).
    cut = int(len(train) * (1 - t.judged_share))
    rise, jitter = _max_rise(smooth[cut:]), _jitter(judged)
    tail = int(len(train) * (1 - t.zigzag_tail))
    flips, half_amp = _zigzag(train[tail:])
    v_flips, v_half_amp = _zigzag(val[tail:])
    ev.update(tail_rise=_r(rise / scale), tail_sign_flips=_r(flips), tail_zigzag=_r(half_amp / scale),
              val_tail_zigzag=_r(v_half_amp / scale) if v_flips >= t.zigzag_flips else 0.0)
    # Only a tail that looks like noise (no repeating pattern) must climb above its jitter.
    noise_like = _max_autocorr(judged, t.max_lag) < t.structure
    if (rise >= t.osc_rise * scale and (not noise_like or rise >= t.osc_noise * jitter)) or \
            (flips >= t.zigzag_flips and half_amp >= t.zigzag_amp * scale) or \
            (v_flips >= t.zigzag_flips and v_half_amp >= t.zigzag_amp * scale):
        return _verdict("oscillating", cfg, ev, t, growth=rise / (t.osc_rise * scale))

    # 4. Train keeps falling while validation climbs clearly above its minimum (a U, not a
    #    minimum at the start), by more than the val set's sampling noise.
    if len(val) >= 3 and np.all(np.isfinite(val)):
        # Averaging neighbours first: a running median alone keeps one phase of a zig-zag.
        pairs = np.r_[val[:1], (val[1:] + val[:-1]) / 2]
        vs = _running_median(pairs, t.smooth)
        i_min = int(np.argmin(vs))
        v_min, v_end = float(vs[i_min]), float(np.median(pairs[-t.smooth:]))
        v_rise, v_drop = v_end - v_min, float(vs[0]) - v_min
        sampling = _val_sampling_sd(cfg)
        fell = float(smooth[i_min] - smooth[-1])
        gap = len(val) - 1 - i_min
        ev.update(val_min_epoch=i_min, val_rise=_r(v_rise / max(abs(v_min), 1e-12)),
                  train_fall_after_val_min=_r(fell / scale))
        early_stopped = cfg.get_bool("train.early_stop") and len(train) < (cfg.get_int("train.epochs") or 0)
        if (v_rise > 0 and v_rise >= t.overfit_rise * abs(v_min)
                and v_rise >= t.overfit_noise * _jitter(val) and v_rise >= t.overfit_sampling * sampling
                and v_drop >= t.overfit_drop * v_rise
                and gap >= max(t.overfit_gap_min, t.overfit_gap * len(val))
                and fell >= t.overfit_train_fall * scale and not early_stopped):
            return _verdict("overfitting", cfg, ev, t)

    # 5. Barely moved: little of what the data allows was removed.
    if removed < t.stall_share:
        return _verdict("stalled", cfg, ev, t, progress=max(float(removed), 0.0))
    return _verdict("healthy", cfg, ev, t)


# --- causes and fixes ---------------------------------------------------------------------------


def _verdict(symptom: str, cfg: "_Params", ev: dict[str, Any], t: Thresholds, *,
             growth: float = 1.0, progress: float = 0.0, note: str = "") -> Diagnosis:
    lr = cfg.get_float("optimizer.lr")
    no_zero_grad = cfg.get_bool("train.zero_grad") is False
    if symptom == "healthy":
        return Diagnosis("healthy", note or "The loss fell to what the data allows and settled.", [], ev)
    if symptom in ("diverged", "oscillating") and no_zero_grad:
        what = "blew up" if symptom == "diverged" else "swings without settling"
        cause = (f"The loss {what} because zero_grad() is missing: gradients accumulate across "
                 "epochs, so each step follows their running sum (undamped momentum).")
        fix = ["train.zero_grad=true"] + _lr(lr, 1 / 10) + ["train.clip_grad_norm=1.0"]
        return Diagnosis(symptom, cause, fix, ev)
    if symptom == "diverged":
        # 10x, or more when the growth rate says 10x cannot be enough: for gradient descent on a
        # quadratic the loss grows by (lr*lam - 1)**2 per epoch, so lr*lam ~ 1 + sqrt(growth).
        need = _pow10(1 + math.sqrt(max(growth, 0.0)), t.max_lr_factor * 10)
        ev["lr_factor"] = need
        cause = "The learning rate is too high: each step overshoots further and the loss blows up."
        return Diagnosis(symptom, cause, _lr(lr, 1 / need) + ["train.clip_grad_norm=1.0"], ev)
    if symptom == "oscillating":
        # The loss a bouncing step costs grows ~lr**2: cut lr by sqrt(swing / what is allowed).
        need = _pow10(math.sqrt(max(growth, 1.0)), t.max_lr_factor)
        ev["lr_factor"] = need
        cause = "The step size overshoots the minimum: the loss bounces instead of settling."
        return Diagnosis(symptom, cause, _lr(lr, 1 / need) + ["train.lr_schedule=cosine"], ev)
    if symptom == "overfitting":
        cause = "The model memorises the training set: train loss falls while validation loss rises."
        return Diagnosis(symptom, cause, ["train.early_stop=true", "optimizer.weight_decay=0.01"], ev)
    # Stalled. With exponential convergence removed = 1 - exp(-k*T); k scales with lr, so the lr
    # factor that removes 90% is ln(10) / (k*T). No measurable progress says nothing: use 10.
    kt = -math.log(max(1.0 - progress, 1e-12))
    need = 10.0 if progress < t.min_progress else _pow10(math.log(10) / kt, t.max_lr_factor)
    ev["lr_factor"] = need
    cause = "The learning rate is too low (or gradients vanish): the loss barely moves."
    return Diagnosis(symptom, cause, _lr(lr, need) + ["data.normalize=true"], ev)


def _lr(lr: Optional[float], factor: float) -> list[str]:
    """``optimizer.lr=<lr * factor>`` written compactly (0.1/10 -> 0.01), or nothing without lr."""
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
    return np.asarray([float(v) if v is not None else math.nan for v in seq], dtype=float)


def _first_nonfinite(a: np.ndarray) -> int:
    bad = np.flatnonzero(~np.isfinite(a))
    return int(bad[0]) if len(bad) else 1 << 62


def _running_median(a: np.ndarray, w: int) -> np.ndarray:
    """Centred running median (window shrinks at the ends): kills jitter, keeps waves."""
    h = max(w, 1) // 2
    return np.array([np.median(a[max(0, i - h): i + h + 1]) for i in range(len(a))])


def _floor(train: np.ndarray, smooth: np.ndarray, noise: Optional[float]) -> float:
    """The lowest loss this run could reach. The config's noise**2 (the irreducible MSE) counts
    when given, capped by what the run reached; a curve that visibly levelled off is taken at its
    word (the sample's noise and the model's capacity move the true floor), extrapolating its
    geometric decay from the start, middle and end levels."""
    low = float(np.min(smooth))
    base = min(noise * noise, low) if noise is not None and math.isfinite(noise) else min(0.0, low)
    n = len(train)
    if n < 3:
        return base
    a, b, c = float(train[0]), float(smooth[n // 2]), float(smooth[-1])
    d1, d2 = a - b, b - c
    if d1 <= 0 or d2 >= d1:
        curve = -math.inf  # no decay visible yet (flat, linear or accelerating)
    elif d2 <= 0:
        curve = low  # levelled off, or back up: the lowest level seen
    else:
        q = d2 / d1  # how much of the first half's drop the second half repeated
        curve = c - d2 * q / (1 - q)
    return float(min(max(base, curve), low))


def _max_rise(s: np.ndarray) -> float:
    """Largest climb of a curve above its lowest point so far (0 for a falling curve)."""
    if len(s) < 2:
        return 0.0
    return float(np.max(s - np.minimum.accumulate(s)))


def _jitter(a: np.ndarray) -> float:
    """Robust std of epoch-to-epoch noise (median absolute difference, for Gaussian jitter)."""
    d = np.diff(a)
    d = d[np.isfinite(d)]
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2)) if len(d) else 0.0


def _max_autocorr(a: np.ndarray, max_lag: int) -> float:
    """Largest |autocorrelation| at lags 1..max_lag after removing a straight-line trend."""
    n = len(a)
    if n < 8:
        return 1.0  # too short to tell noise from a wave: do not excuse it as noise
    x = np.arange(n)
    r = a - np.polyval(np.polyfit(x, a, 1), x)
    var = float(np.dot(r, r))
    if var <= 0:
        return 0.0
    return max(abs(float(np.dot(r[:-k], r[k:]))) / var for k in range(1, min(max_lag, n // 2) + 1))


def _zigzag(tail: np.ndarray) -> tuple[float, float]:
    """(share of consecutive differences that flip sign, median half-amplitude of the steps)."""
    d = np.diff(tail)
    if len(d) < 4:
        return 0.0, 0.0
    flips = float(np.mean(d[1:] * d[:-1] < 0))
    return flips, float(np.median(np.abs(d)) / 2)


def _val_sampling_sd(cfg: "_Params") -> float:
    """Std of a val MSE over n_val points with Gaussian label noise (0 without the config)."""
    noise, n_val = cfg.get_float("data.noise"), cfg.get_float("data.n_val")
    if noise is None or not n_val or n_val <= 0:
        return 0.0
    return noise * noise * math.sqrt(2.0 / n_val)


def _r(x: float) -> float:
    return round(float(x), 4)


def _growth(a: np.ndarray) -> float:
    """Per-epoch growth factor of the loss from its lowest point to its last finite value."""
    a = a[np.isfinite(a)]
    if len(a) < 2:
        return 1.0
    i = int(np.argmin(a))
    if i >= len(a) - 1 or a[i] <= 0:
        return 1.0
    return float((a[-1] / a[i]) ** (1.0 / (len(a) - 1 - i)))


# --- config access -------------------------------------------------------------------------------


class _Params:
    """Dotted-key reads from a nested mapping or MLflow's flat string params."""

    def __init__(self, config: Any) -> None:
        self.config = config if config is not None else {}

    def get(self, key: str) -> Any:
        c = self.config
        if isinstance(c, Mapping) and key in c:
            return c[key]
        node: Any = c
        for part in key.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif not isinstance(node, Mapping) and hasattr(node, part):
                node = getattr(node, part)
            else:
                return None
        return node

    def get_float(self, key: str) -> Optional[float]:
        v = self.get(key)
        if isinstance(v, bool) or v is None:
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    def get_int(self, key: str) -> Optional[int]:
        v = self.get_float(key)
        return int(v) if v is not None and math.isfinite(v) else None

    def get_bool(self, key: str) -> Optional[bool]:
        v = self.get(key)
        if isinstance(v, str):
            return {"true": True, "false": False, "1": True, "0": False}.get(v.strip().lower())
        return bool(v) if isinstance(v, (bool, int)) else None


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
