"""diagnose(): one run's curves (and optional config) in, a Diagnosis out."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from sweeps.diagnose.curves import (_array, _first_nonfinite, _floor, _growth, _jitter,
    _max_autocorr, _r, _sign_changes, _smooth, _val_sampling_sd, _zigzag)
from sweeps.diagnose.fixes import _verdict
from sweeps.diagnose.params import Params as _Params
from sweeps.diagnose.thresholds import DEFAULT, Thresholds
from sweeps.diagnose.verdict import Diagnosis


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
        return _verdict("diverged", cfg, ev, t, (train, grads), ratio=_growth(train[:bad]))
    val = val[: len(train)]
    if len(train) < t.min_epochs:
        return _verdict("healthy", cfg, ev, t, (train, grads),
                        note=f"Too few epochs ({len(train)}) to judge.")

    init = float(train[0])
    smooth = _smooth(train, t.smooth)
    end = float(smooth[-1])
    cut = int(len(train) * (1 - t.judged_share))
    judged = train[cut:]
    floor, tail_ratio = _floor(train, smooth, cfg.get_float("data.noise"), _jitter(judged), t)
    reducible = init - floor
    trivial = reducible <= t.nothing_to_learn * abs(init)
    scale = max(reducible, t.nothing_to_learn * abs(init), 1e-12)
    removed = 1.0 if trivial else (init - end) / reducible
    ev.update(initial_loss=_r(init), final_loss=_r(train[-1]), floor=_r(floor),
              removed_share=_r(removed), tail_ratio=_r(min(tail_ratio, 99.0)))
    if len(grads) and grads[0] > 0:
        ev["grad_norm_last_over_first"] = _r(grads[-1] / grads[0])

    # 2. Blew up: far above the start and still near its worst (a loss that came back down a
    #    long way from an early peak is swinging, not blowing up), or climbing steadily past it.
    ups = float(np.mean(np.diff(judged) > 0)) if len(judged) > 2 else 0.0
    last = train[int(len(train) * (1 - t.worst_share)):]
    worst = bool(np.max(last) >= t.worst_ratio * np.max(train))
    if (end > t.blowup_ratio * max(abs(init), 1e-12) and worst) or \
            (end >= t.growth_ratio * init > 0 and ups >= t.growth_steady):
        ev.update(end_over_initial=_r(end / init) if init else None, rising_share=_r(ups))
        return _verdict("diverged", cfg, ev, t, (train, grads), ratio=_growth(train))

    # 3. Does not settle: ends climbing back up, or climbs back well above the lowest loss
    #    reached so far for a few epochs (waves, zig-zag, recurring spikes; a one-epoch blip does
    #    not count), or val zig-zags: the weights still bounce across the minimum (lr*lam ~ 2).
    #    Only a tail without pattern (iid jitter) must also stand out from its own jitter.
    climb, busy, swing, first = _unsettled(train, smooth, scale, t)
    tail = int(len(train) * (1 - t.zigzag_tail))
    v_flips, v_half_amp = _zigzag(val[tail:])
    v_zigzag = v_half_amp if v_flips >= t.zigzag_flips else 0.0
    ev.update(tail_climb=_r(climb / scale), tail_epochs_above=busy,
              tail_max_swing=_r(swing / scale), tail_sign_changes=_sign_changes(train[tail:]),
              val_tail_zigzag=_r(v_zigzag / scale))
    if climb >= t.osc_rise * scale or busy >= t.osc_epochs or v_zigzag >= t.zigzag_amp * scale:
        over = max(climb / (t.osc_rise * scale), swing / (t.osc_swing * scale), 1.0)
        # Val already turned up before the swings began: early stopping ends the run at its val
        # minimum, before them, and so cures both (a lower lr would leave the overfitting).
        turned = len(val) >= first > 0 and _val_turn(train[:first], smooth[:first], val[:first],
                                                     scale, cfg, t)
        stop = _early_stop_at(val, cfg)
        early = bool(turned) and stop is not None and stop < first
        if early:
            ev["val_turned_before_swings"] = True
        return _verdict("oscillating", cfg, ev, t, (train, grads), ratio=over,
                        early_stop_first=early)

    # 4. Train fits (not stalled) and keeps falling while val climbs clearly above its minimum,
    #    reached well before the end, by more than its jitter and the val set's sampling noise.
    if len(val) >= t.min_epochs and removed >= t.stall_share:
        turned = _val_turn(train, smooth, val, scale, cfg, t, ev)
        epochs = cfg.get_int("train.epochs")
        caught = bool(cfg.get_bool("train.early_stop")) and epochs is not None and len(val) < epochs
        if turned and not caught:
            # Where would early stopping end this run? If the loss still swings there, it would
            # stop a run that never settled; weight decay regularises without cutting it short.
            stop = _early_stop_at(val, cfg)
            c2, b2, _, _ = _unsettled(train[:stop + 1], smooth[:stop + 1], scale, t) \
                if stop is not None else (0.0, 0, 0.0, 0)
            unsettled = c2 >= t.osc_rise * scale or b2 >= t.osc_epochs
            if unsettled:
                ev["swings_at_early_stop"] = stop
            return _verdict("overfitting", cfg, ev, t, (train, grads),
                            early_stop_first=not unsettled)
        if turned:
            ev["early_stopped"] = True  # early stopping already ended it at the val minimum
    if _early_stopped(cfg, val, t):
        # Early stopping ended the run once val stopped improving, after it had improved: more
        # epochs would not have helped val, so a train loss still falling is not a stall.
        ev["early_stopped"] = True
        return _verdict("healthy", cfg, ev, t, (train, grads),
                        note="Early stopping ended the run at its validation optimum.")

    # 5. Barely moved: little of what the data allows was removed (smoothly: 3 found no swings),
    #    or the gradient says the minimum is still far (with zero_grad off it is the running sum).
    g_left = None
    if len(grads) == len(train) and cfg.get_bool("train.zero_grad") is not False \
            and float(np.max(grads)) > 0:
        g_left = float(grads[-1] / np.max(grads))
        ev["grad_norm_last_over_max"] = _r(g_left)
    if removed < t.stall_share or (g_left is not None and g_left >= t.stall_grad):
        share = min(float(removed), 1 - g_left**2) if g_left is not None else float(removed)
        return _verdict("stalled", cfg, ev, t, (train, grads), ratio=max(share, 0.0))
    return _verdict("healthy", cfg, ev, t, (train, grads))


def _unsettled(train: np.ndarray, smooth: np.ndarray, scale: float,
               t: Thresholds) -> tuple[float, int, float, int]:
    """How far the judged part of a curve fails to settle: (how far its smoothed level ends
    above its judged minimum, how many judged epochs sit >= osc_swing * scale above the lowest
    loss so far, the largest such climb, the first epoch that does). An unpatterned (iid)
    tail must also stand out from its own jitter."""
    n = len(train)
    cut = int(n * (1 - t.judged_share))
    judged = train[cut:]
    if len(judged) < 2:
        return 0.0, 0, 0.0, n
    patterned = _max_autocorr(judged, t.max_lag) >= t.structure
    noise = 0.0 if patterned else t.osc_noise * _jitter(judged)
    climb = float(smooth[-1] - np.min(smooth[cut:]))
    above = judged - np.minimum.accumulate(judged)
    high = np.flatnonzero(above >= max(t.osc_swing * scale, noise))
    if climb < noise:
        climb = 0.0
    return climb, len(high), float(np.max(above)), cut + int(high[0]) if len(high) else n


def _val_turn(train: np.ndarray, smooth: np.ndarray, val: np.ndarray, scale: float,
              cfg: "_Params", t: Thresholds, ev: Optional[dict[str, Any]] = None) -> bool:
    """Val climbs clearly above its minimum (reached well before the end, by more than its
    jitter and the val set's sampling noise) while train keeps falling."""
    if len(val) < t.min_epochs:
        return False
    vs = _smooth(val, t.smooth)
    i_min = int(np.argmin(vs))
    v_min, v_rise = float(vs[i_min]), float(vs[-1] - vs[i_min])
    fell = float(smooth[i_min] - smooth[-1])
    if ev is not None:
        ev.update(val_min_epoch=i_min, val_rise=_r(v_rise / max(abs(v_min), 1e-12)),
                  train_fall_after_val_min=_r(fell / scale))
    return (v_rise > 0 and v_rise >= t.overfit_rise * abs(v_min)
            and v_rise >= t.overfit_noise * _jitter(val)
            and v_rise >= t.overfit_sampling * _val_sampling_sd(cfg)
            and len(val) - 1 - i_min >= max(t.overfit_gap_min, t.overfit_gap * len(val))
            and fell >= t.overfit_train_fall * scale)


def _early_stop_at(val: np.ndarray, cfg: "_Params") -> Optional[int]:
    """The epoch at which the loop's early stopping (train.patience epochs without a new best
    val loss; 20 if unknown) would end this run, or None if it never would."""
    patience = cfg.get_int("train.patience") or 20
    best, since = math.inf, 0
    for i, v in enumerate(val):
        best, since = (float(v), 0) if v < best else (best, since + 1)
        if since >= patience:
            return i
    return None


def _early_stopped(cfg: "_Params", val: np.ndarray, t: Thresholds) -> bool:
    """Early stopping ended the run before its epochs, after val had clearly improved."""
    epochs = cfg.get_int("train.epochs")
    if not cfg.get_bool("train.early_stop") or epochs is None or len(val) >= epochs \
            or len(val) < t.min_epochs:
        return False
    vs = _smooth(val, t.smooth)
    gain = float(val[0] - np.min(vs))
    return gain > max(t.overfit_noise * _jitter(val), t.nothing_to_learn * abs(float(val[0])))


