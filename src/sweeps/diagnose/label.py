"""diagnose(): one run's curves (and optional config) in, a Diagnosis out."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Optional, Sequence

import numpy as np

from sweeps.diagnose.chance import baseline, learned_nothing
from sweeps.diagnose.curves import (_array, _clock, _end_share, _first_nonfinite, _floor,
    _gaps_filled, _growth, _jitter, _lost_ground, _lr_rising, _max_autocorr, _r, _sign_changes,
    _smooth, _zigzag)
from sweeps.diagnose.fixes import _verdict
from sweeps.diagnose.foreign import in_own_terms
from sweeps.diagnose.params import Params as _Params, heavy_ball
from sweeps.diagnose.thresholds import DEFAULT, Thresholds
from sweeps.diagnose.validation import (_early_stop_at, _early_stopped, _val_fell, _val_turn,
    _val_turn_margin)
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

    Checks run in order: non-finite, blown up, not settling (unless the swings died out onto the
    baseline loss: stalled), overfitting, stalled, else healthy.
    A run whose params are another script's gets its fix in that script's terms (foreign.py).
    """
    return in_own_terms(_diagnose(train_loss, val_loss, config, grad_norm, thresholds),
                        _Params(config))


def _diagnose(train_loss: Sequence[float], val_loss: Optional[Sequence[float]], config: Any,
              grad_norm: Optional[Sequence[float]], thresholds: Thresholds) -> Diagnosis:
    t, cfg = thresholds, _Params(config)
    train, val, grads = _array(train_loss), _array(val_loss), _array(grad_norm)
    ev: dict[str, Any] = {"epochs_run": int(len(train))}
    # Epochs where nothing was logged (val every k epochs): gaps, not a blow-up.
    (train, n_train), (val, n_val), (grads, n_grad) = (
        _gaps_filled(train), _gaps_filled(val, len(train)), _gaps_filled(grads, len(train)))
    ev.update({k: n for k, n in (("train_gaps_filled", n_train), ("val_gaps_filled", n_val),
                                 ("grad_gaps_filled", n_grad)) if n})
    if np.any(np.isfinite(val)):
        ev["val_epochs"] = int(len(val))

    # 1. Non-finite numbers: the loop stops at the first one, so it is the last epoch recorded.
    bad = min(_first_nonfinite(a) for a in (train, val, grads))
    if bad < max(len(train), len(val), len(grads)):
        ev["first_nonfinite_epoch"] = int(bad)
        return _graded(_verdict("diverged", cfg, ev, t, (train, grads),
                                ratio=_growth(train[:bad])), math.inf, t)
    val = val[: len(train)]
    if len(train) < t.min_epochs:
        return _graded(_verdict("healthy", cfg, ev, t, (train, grads),
                                note=f"Too few epochs ({len(train)}) to judge."), 1.0, t)

    init = float(train[0])
    smooth = _smooth(train, t.smooth)
    end = float(smooth[-1])
    cut = int(len(train) * (1 - t.judged_share))
    judged = train[cut:]
    clock = _clock(cfg, len(train))
    floor, tail_ratio = _floor(train, smooth, cfg.get_float("data.noise"), _jitter(judged), t,
                               clock)
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
    blow = end / (t.blowup_ratio * max(abs(init), 1e-12)) if worst else 0.0
    grow = min(end / (t.growth_ratio * init), ups / t.growth_steady) if init > 0 else 0.0
    # Or: no net progress, swings whose peaks still grow, and nothing that bounds them: the
    # lr itself still rises, or gradients accumulate (zero_grad() missing) under momentum. On a
    # quadratic the summed gradient is an integrator (plain SGD: an undamped, bounded swing)
    # and momentum on top of it a growing mode at any lr (spectral radius > 1); adaptive
    # optimizers' steps stay about lr in size. Followed over the horizon, the peaks' growth
    # reaches blowup_ratio x the initial loss.
    undamped = _lr_rising(clock) or (cfg.get_bool("train.zero_grad") is False
                                     and heavy_ball(cfg) > 0)
    runaway = _runaway(judged, len(train), init, t) if undamped and end >= init > 0 else 0.0
    if runaway >= 1:
        ev["runaway"] = _r(min(runaway, 1e6))
    if blow > 1 or grow >= 1 or runaway >= 1:
        ev.update(end_over_initial=_r(end / init) if init else None, rising_share=_r(ups))
        return _graded(_verdict("diverged", cfg, ev, t, (train, grads), ratio=_growth(train)),
                       max(blow, grow, runaway), t)

    # 3. Does not settle: ends climbing back up, or climbs back well above the lowest loss
    #    reached so far for a few epochs (waves, zig-zag, recurring spikes; a one-epoch blip does
    #    not count), or val zig-zags: the weights still bounce across the minimum (lr*lam ~ 2).
    #    Only a tail without pattern (iid jitter) must also stand out from its own jitter.
    #    Or the judged half as a whole sits well above the best level reached before it: the
    #    run lost ground it had gained (irregular swings that look like noise epoch by epoch).
    climb, busy, swing, first, swing_margin = _unsettled(train, smooth, scale, t)
    lost = _lost_ground(train, smooth, cut)
    tail = int(len(train) * (1 - t.zigzag_tail))
    v_flips, v_half_amp = _zigzag(val[tail:])
    v_zigzag = v_half_amp if v_flips >= t.zigzag_flips else 0.0
    ev.update(tail_climb=_r(climb / scale), tail_epochs_above=busy,
              tail_max_swing=_r(swing / scale), tail_sign_changes=_sign_changes(train[tail:]),
              val_tail_zigzag=_r(v_zigzag / scale), tail_above_best=_r(lost / scale))
    osc = max(climb / (t.osc_rise * scale), swing_margin, v_zigzag / (t.zigzag_amp * scale),
              lost / (t.osc_swing * scale))
    # Swings that died out onto the baseline loss: the last quarter is calm at what predicting
    # a constant scores (the net froze there; more epochs keep it there): judged as step 5 does.
    base = baseline(cfg, end, val, t)
    noise = cfg.get_float("data.noise")
    calm = learned_nothing(base[0], noise, train[tail:], end, floor, t) if osc >= 1 else 0.0
    if calm >= 1:
        return _at_chance(cfg, (train, grads), end, base, ev, t, calm, died_out=True)
    if osc >= 1:
        over = max(climb / (t.osc_rise * scale), swing / (t.osc_swing * scale), 1.0)
        # Val already turned up before the swings began: early stopping ends the run at its val
        # minimum, before them, and so cures both (a lower lr would leave the overfitting).
        # The swings began where the loss first climbed back, judged half or not: early
        # stopping must end the run before that, or the stopped run swings too.
        first = min(first, _unsettled(train, smooth, scale, replace(t, judged_share=1.0))[3])
        turned = len(val) >= first > 0 and _val_turn(train[:first], smooth[:first], val[:first],
                                                     scale, cfg, t)
        stop = _early_stop_at(val, cfg)
        early = bool(turned) and stop is not None and stop < first
        if early:
            ev["val_turned_before_swings"] = True
        return _graded(_verdict("oscillating", cfg, ev, t, (train, grads), ratio=over,
                                early_stop_first=early), osc, t)

    # 4. Train fits (not stalled) and keeps falling while val climbs clearly above its minimum,
    #    reached well before the end, by more than its jitter and the val set's sampling noise.
    #    A train loss still far from its floor does not excuse it once val has clearly fallen
    #    and turned back up: more epochs then hurt what the run is for.
    turn = 0.0
    if len(val) >= t.min_epochs and (removed >= t.stall_share or _val_fell(val, t)):
        turn = _val_turn_margin(train, smooth, val, scale, cfg, t, ev)
        turned = turn >= 1
        epochs = cfg.get_int("train.epochs")
        caught = bool(cfg.get_bool("train.early_stop")) and epochs is not None and len(val) < epochs
        if turned and not caught:
            # Where would early stopping end this run? If the loss still swings there, it would
            # stop a run that never settled; weight decay regularises without cutting it short.
            stop = _early_stop_at(val, cfg)
            c2, b2, _, _, _ = _unsettled(train[:stop + 1], smooth[:stop + 1], scale, t) \
                if stop is not None else (0.0, 0, 0.0, 0, 0.0)
            unsettled = c2 >= t.osc_rise * scale or b2 >= t.osc_epochs
            if unsettled:
                ev["swings_at_early_stop"] = stop
            return _graded(_verdict("overfitting", cfg, ev, t, (train, grads),
                                    early_stop_first=not unsettled), turn, t)
        if turned:
            ev["early_stopped"] = True  # early stopping already ended it at the val minimum
    stopped = _early_stopped(cfg, val, t)
    if stopped in ("improved", "worsened"):
        # Early stopping ended the run once val stopped improving: more epochs would not have
        # helped val, so a train loss still falling is not a stall. (A val that never moved
        # at all stopped a stall: judged below.)
        ev["early_stopped"] = True
        note = "Early stopping ended the run at its validation optimum."
        if stopped == "worsened":
            note = ("Early stopping ended the run: training only raised the validation loss, "
                    "so the validation set disagrees with the training set (too small or too "
                    "noisy to learn from?); more epochs would not have helped it.")
        return _graded(_verdict("healthy", cfg, ev, t, (train, grads), note=note), math.inf, t)

    # 5. Learned nothing from the inputs: the run ends where predicting a constant (the mean
    #    target, the class frequencies) would, by the run's own record (data.baseline_loss). A
    #    flat curve there is a net that collapsed onto the mean, not one that converged.
    blank = learned_nothing(base[0], noise, smooth[cut:], end, floor, t, above=end < init)
    if blank >= 1:
        return _at_chance(cfg, (train, grads), end, base, ev, t, blank)

    # 6. Barely moved: little of what the data allows was removed (smoothly: 3 found no swings),
    #    or the gradient says the minimum is still far (with zero_grad off it is the running sum).
    g_left = None
    if len(grads) == len(train) and cfg.get_bool("train.zero_grad") is not False \
            and float(np.max(grads)) > 0:
        g_left = float(grads[-1] / np.max(grads))
        ev["grad_norm_last_over_max"] = _r(g_left)
    stall = max(t.stall_share / max(float(removed), 1e-12) if removed > 0 else math.inf,
                g_left / t.stall_grad if g_left is not None else 0.0)
    if stall > 1 or (g_left is not None and g_left >= t.stall_grad):
        share = min(float(removed), 1 - g_left**2) if g_left is not None else float(removed)
        # A tail still speeding up (leaving a plateau) removes more per epoch than its average
        # so far: the lr it needs is read off its last quarter's pace.
        end = _end_share(smooth, floor) if tail_ratio > 1 else None
        share = max(share, end) if end is not None else share
        # Val already climbs while train falls: a larger lr gets there sooner, so stop early too.
        rising = (turn if turn else _val_turn_margin(train, smooth, val, scale, cfg, t)) >= 1
        if rising:
            ev["val_rising"] = True
        return _graded(_verdict("stalled", cfg, ev, t, (train, grads), ratio=max(share, 0.0),
                                early_stop_first=rising), stall, t)
    # Healthy: as far from the nearest unhealthy rule as that rule's measure is from it.
    near = [osc, turn, stall, blank]
    return _graded(_verdict("healthy", cfg, ev, t, (train, grads)),
                   1.0 / max(max(near), 1e-12), t)


def _at_chance(cfg: _Params, curves: tuple[np.ndarray, np.ndarray], end: float,
               base: tuple[float, Optional[int]], ev: dict[str, Any], t: Thresholds,
               margin: float, died_out: bool = False) -> Diagnosis:
    """Stalled at the baseline loss (chance.learned_nothing), with the evidence the fix reads.
    ``curves``: (train loss, gradient norm); ``base``: chance.baseline()'s answer."""
    train = curves[0]
    ev.update(baseline_loss=_r(base[0]), learned_share=_r(1 - end / base[0]))
    if base[1] is not None:
        ev["baseline_classes"] = base[1]
    if died_out:
        ev["swings_died_out"] = True
    init = float(train[0])
    rose = float(np.max(train) / init) if init > 0 else 0.0
    if rose >= t.growth_ratio:  # its first steps threw the weights far: see _collapsed
        ev["peak_over_initial"] = _r(rose)
    return _graded(_verdict("stalled", cfg, ev, t, curves), margin, t)


def _runaway(judged: np.ndarray, n: int, init: float, t: Thresholds) -> float:
    """Where the judged epochs' peaks head: the peak of each quarter of them, its growth per
    epoch (a log-linear fit), followed from the last peak for the rest of the horizon, as a
    multiple of blowup_ratio x the initial loss (>= 1: blows up). 0 when the peaks do not grow
    overall."""
    parts = [p for p in np.array_split(judged, 4) if len(p)]
    if len(parts) < 4:
        return 0.0
    peaks = np.array([float(np.max(p)) for p in parts])
    if np.min(peaks) <= 0:
        return 0.0
    per_epoch = np.polyfit(np.arange(4), np.log(peaks), 1)[0] / (len(judged) / 4)
    if per_epoch <= 0:
        return 0.0
    log_end = math.log(peaks[-1]) + per_epoch * (t.horizon - 1) * n
    return math.exp(min(log_end - math.log(t.blowup_ratio * init), 700.0))


def _graded(d: Diagnosis, margin: float, t: Thresholds) -> Diagnosis:
    """The diagnosis with its margin (a factor >= 1 from the deciding threshold) and the
    confidence it gives: clear from t.clear_margin on, borderline nearer."""
    margin = max(float(margin), 1.0) if math.isfinite(margin) else math.inf
    d.evidence["margin"] = _r(min(margin, 1e6))
    return replace(d, margin=margin, confidence="clear" if margin >= t.clear_margin
                   else "borderline")


def _unsettled(train: np.ndarray, smooth: np.ndarray, scale: float,
               t: Thresholds) -> tuple[float, int, float, int, float]:
    """How far the judged part of a curve fails to settle: (how far its smoothed level ends
    above its judged minimum, how many judged epochs climb back above the lowest loss so far
    (>= osc_swing * scale, or to >= osc_log_swing times it), the largest such climb, the first
    epoch that does, and the swing's margin: the osc_epochs-th largest epoch's climb over its
    threshold). An unpatterned (iid) tail must also stand out from its own jitter."""
    n = len(train)
    cut = int(n * (1 - t.judged_share))
    judged = train[cut:]
    if len(judged) < 2:
        return 0.0, 0, 0.0, n, 0.0
    patterned = _max_autocorr(judged, t.max_lag) >= t.structure
    extreme = math.sqrt(2 * math.log(max(len(judged), 2)))  # iid noise's reach, in std devs
    noise = 0.0 if patterned else t.osc_noise * extreme * _jitter(judged)
    climb = float(smooth[-1] - np.min(smooth[cut:]))
    run_min = np.minimum.accumulate(judged)
    above = judged - run_min
    # On a log scale too: a loss spanning decades that jumps back to several times its lowest
    # level is swinging even when the jump is a small share of where it started (unnormalised
    # targets); the climb must still be material, not jitter near a floor of 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where((run_min > 0) & (above >= t.osc_min_climb * scale),
                             judged / np.where(run_min > 0, run_min, 1.0) / t.osc_log_swing, 0.0)
    ratio = np.maximum(above / max(t.osc_swing * scale, noise, 1e-300), log_ratio)
    high = np.flatnonzero(ratio >= 1)
    if climb < noise:
        climb = 0.0
    k = min(t.osc_epochs, len(ratio))
    margin = float(np.sort(ratio)[-k]) if k else 0.0
    return climb, len(high), float(np.max(above)), cut + int(high[0]) if len(high) else n, margin
