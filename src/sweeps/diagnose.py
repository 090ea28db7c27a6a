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
    *reducible loss* (initial loss minus the floor its curve is heading for), never in absolute
    units."""

    # Reading the curve
    smooth: int = 5  # epochs in the running median that reads levels off jittery curves
    judged_share: float = 0.5  # the last half of the run is judged for settling down
    min_epochs: int = 3  # fewer finite epochs cannot be judged (healthy, unless non-finite)
    level_noise: float = 3.0  # a quarter's drop within this many std devs of the judged epochs'
    #   jitter is no drop: a curve whose last quarter is that flat has levelled off
    horizon: float = 10.0  # the floor a run is heading for: where its tail's decay takes it in
    #   this many times its epochs (a tail that does not slow down is not followed to infinity)
    nothing_to_learn: float = 1e-3  # reducible loss below this share of the initial loss: the
    #   run started at its floor, so nothing could be removed and nothing stalled
    # diverged
    blowup_ratio: float = 100.0  # smoothed end level above this multiple of the initial loss
    worst_share: float = 0.25  # ... with the peak of this last share of the run at least
    worst_ratio: float = 0.5  # ... this share of the run's peak (not recovering from it)
    growth_ratio: float = 2.0  # or: end >= this multiple of the initial loss ...
    growth_steady: float = 0.9  # ... with at least this share of the judged epochs going up
    # oscillating (does not settle)
    osc_rise: float = 0.2  # the smoothed loss ends >= this * reducible above its judged minimum
    osc_swing: float = 0.1  # or: the loss climbs back >= this * reducible above its lowest value
    osc_epochs: int = 2  #   so far, for at least this many of the judged epochs: a settled run
    #   does not climb back (waves, zig-zags and the late spikes of an adaptive optimizer whose
    #   step outgrows the minimum all do); a single-epoch blip is not counted
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
    stall_share: float = 1 - math.exp(-1)  # less than this share of the reducible loss removed:
    #   the run has not got through one time constant of its own decay (1 - 1/e ~ 0.63)
    stall_grad: float = math.exp(-0.5)  # or: the gradient norm still has this share of its
    #   largest (zero_grad on): near a minimum the excess loss goes as the squared gradient, so
    #   at most 1 - 1/e of it can be gone; catches a curve that flattens because the optimizer's
    #   steps shrank (RMSprop's warm-up, a decaying schedule) rather than because it arrived
    # fixes
    stall_target: float = 0.8  # a stalled run's lr is raised to remove this share in its epochs
    min_progress: float = 1e-3  # removed share below which a stall says nothing about the lr
    max_lr_factor: float = 1000.0  # the largest lr change a fix proposes
    # a second fault behind a missing zero_grad(). Its first update is exactly the plain one
    # (nothing has accumulated yet), so epoch 0 -> 1 shows how plain steps at this lr behave.
    overshoot: float = 1.0  # the first update went this many times past the minimum along its
    #   own direction or more (SGD: lr times the curvature its gradient meets, read off the
    #   loss drop and the gradient norm; 2 = the loss went back up): the stiffest direction is
    #   at least as far (the gradient averages the curvatures), where plain descent zig-zags
    #   (> 1) or diverges (> 2): the lr is too high even with zero_grad() restored
    first_step_epochs: float = 1.0  # the first plain update's share of the reducible loss,
    #   kept up for the run's epochs, gets through fewer than this many time constants: the lr
    #   is too low even with zero_grad() restored (1: the stall line, 1 - 1/e removed). Plain
    #   descent on a quadratic never speeds up (the loss left per epoch is log-convex), so this
    #   is the most it can do; Adam's steps keep their size and RMSprop's first is its largest
    capacity: float = 0.25  # model parameters >= this share of the training points, with
    #   noisy labels: least squares absorbs p/n of the noise variance (E[train MSE] = noise**2 *
    #   (1 - p/n)) and a converged fit errs by noise**2 * (1 + p/n) on new points: from 1/4 on,
    #   2.5x the overfit_rise line above the floor, so once the run's other fault is fixed it
    #   overfits and the fix adds early stopping. (Measured: degree-9 poly on 30 points, p/n =
    #   1/3, overfits once fixed; the line, 2/12, fits signal and noise at one pace and does not.)


DEFAULT = Thresholds()


@dataclass(frozen=True)
class Diagnosis:
    """The verdict for one run: a symptom from SYMPTOMS, why, THE prescribed fix (Hydra
    overrides applied together: one per fault found), other options to try instead
    (``alternatives``: each an override or a space-separated compound) and the numbers that
    decided it."""

    symptom: str
    cause: str
    fix: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    alternatives: list[str] = field(default_factory=list)

    def fix_str(self) -> str:
        """The fix overrides, space-separated ("" for a healthy run): apply all of them."""
        return " ".join(self.fix)

    def markdown(self) -> str:
        """A short markdown explanation of the verdict and its evidence (a run description)."""
        lines = [f"**{self.symptom}**: {self.cause}", ""]
        if self.fix:
            lines += ["Fix: " + " ".join(f"`{f}`" for f in self.fix), ""]
        if self.alternatives:
            lines += ["Or: " + ", ".join(f"`{f}`" for f in self.alternatives), ""]
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


# --- causes and fixes ---------------------------------------------------------------------------


def _verdict(symptom: str, cfg: _Params, ev: dict[str, Any], t: Thresholds,
             curves: tuple[np.ndarray, np.ndarray], *, ratio: float = 1.0, note: str = "",
             early_stop_first: bool = False) -> Diagnosis:
    """Cause, THE fix (every fault found, applied together) and alternatives for a symptom.
    ``curves``: (train loss, gradient norm). ``ratio``: diverged, the per-epoch growth of the
    loss; oscillating, how far the swing exceeds what is allowed; stalled, the share removed.
    ``early_stop_first``: oscillating, val turned up before the swings began; overfitting,
    early stopping would not cut into swings."""
    lr = cfg.get_float("optimizer.lr")
    if symptom == "healthy":
        return Diagnosis(symptom, note or "The loss fell to what the data allows and settled.",
                         [], ev)
    # The symptom's own remedies, the most likely to heal first: options[0] is the fix for the
    # fault the curve shows, the rest are alternatives to it.
    cause, options = _symptom_fix(symptom, lr, ev, t, ratio, early_stop_first)
    # Can the model memorise this data once the run trains properly? Then early stopping goes
    # with any fix that is not about overfitting already.
    memorises = symptom != "overfitting" and _memorises(cfg, ev, t)
    stop = ["train.early_stop=true"] if memorises else []
    also_memorises = (" With noisy labels and this many parameters per training point, the "
                      "model memorises the noise once it trains properly: stop early.")
    if cfg.get_bool("train.zero_grad") is not False:
        fix = options[0] if options else []
        fix = fix + [s for s in stop if s not in fix]
        return Diagnosis(symptom, cause + (also_memorises if stop and fix != stop else ""),
                         fix, ev, [" ".join(o) for o in options[1:]])

    # zero_grad() is missing: that is the bug, whatever else is wrong; the fix restores it and
    # adds any second fault the evidence shows.
    accumulate = ("zero_grad() is missing: gradients accumulate across epochs, so every step "
                  "follows their running sum (undamped momentum).")
    zero = ["train.zero_grad=true"]
    if symptom in ("diverged", "oscillating"):
        # The running sum is the cause: no lr or schedule makes it settle. Is the lr wrong too?
        what = "blew up" if symptom == "diverged" else "swings without settling"
        cause = f"The loss {what} because " + accumulate
        second, why = _plain_lr(curves, cfg, t, ev)
        fix = zero + second
        if early_stop_first and not stop:  # val turned up before the swings began
            stop = ["train.early_stop=true"]
            why += (" Validation loss had already turned up before the swings began: stop "
                    "early.")
        if stop:
            why += also_memorises if memorises else ""
        fix += stop
        alternatives = [" ".join(zero + o + [s for s in stop if s not in o])
                        for o in options if o and not o[0].startswith("optimizer.lr=")]
        if not second:
            alternatives.insert(0, " ".join(zero + _lr(lr, 0.1) + stop))
        return Diagnosis(symptom, cause + why, fix, ev,
                         [a for a in dict.fromkeys(alternatives) if a != " ".join(fix)])
    # Stalled or overfitting: the curve names its own fault (too low an lr, memorising); the
    # missing zero_grad() comes on top. A stalled run's running sum only made its steps larger
    # than plain ones, so the lr it needs is at least the one the stall asks for.
    fix = zero + (options[0] if options else []) + stop
    fix = list(dict.fromkeys(fix))
    cause += " Also, " + accumulate + (also_memorises if memorises else "")
    return Diagnosis(symptom, cause, fix, ev,
                     [" ".join(dict.fromkeys(zero + o + stop)) for o in options[1:]])


def _symptom_fix(symptom: str, lr: float | None, ev: dict[str, Any], t: Thresholds,
                 ratio: float, early_stop_first: bool) -> tuple[str, list[list[str]]]:
    """The cause of a symptom and its remedies, each a list of overrides, the most likely to
    heal the run first (a remedy needing the lr is left out when the lr is unknown)."""
    if symptom == "diverged":
        # 10x, or more when the growth says 10x is not enough: gradient descent on a quadratic
        # grows the loss by (lr*lam - 1)**2 per epoch, so lr*lam ~ 1 + sqrt(growth); aim at 1.
        factor = _pow10(1 + math.sqrt(max(ratio, 0.0)), t.max_lr_factor)
        ev["lr_factor"] = factor
        cause = "The learning rate is too high: each step overshoots further and the loss blows up."
        return cause, _nonempty([_lr(lr, 1 / factor), ["train.clip_grad_norm=1.0"]])
    if symptom == "oscillating":
        # A bouncing step costs loss ~ lr**2: cut lr by sqrt(swing / allowed swing), at least 10x.
        factor = _pow10(math.sqrt(ratio), t.max_lr_factor)
        ev["lr_factor"] = factor
        cause = "The step size overshoots the minimum: the loss bounces instead of settling."
        options = [_lr(lr, 1 / factor), ["train.lr_schedule=cosine"]]
        if early_stop_first:
            cause += (" Validation loss had already turned up before the swings began: "
                      "early stopping ends the run at its minimum, before them.")
            options.insert(0, ["train.early_stop=true"])
        return cause, _nonempty(options)
    if symptom == "overfitting":
        cause = "The model memorises the training set: train loss falls, validation loss rises."
        options = [["train.early_stop=true"], ["optimizer.weight_decay=0.01"]]
        if not early_stop_first:
            cause += (" The loss still swings where early stopping would end the run: weight "
                      "decay regularises without cutting it short.")
            options.reverse()
        return cause, options
    # Stalled. Converging exponentially, removed = 1 - exp(-k*T) with k ~ lr: the lr factor
    # that removes stall_target is -ln(1 - target) / (k*T). No measurable progress says nothing
    # about k: use 10.
    factor = _raise_factor(ratio, t)
    ev["lr_factor"] = factor
    cause = ("The learning rate is too low (or the gradients vanish): the loss is still falling "
             "far from where it is heading, or barely moves.")
    return cause, _nonempty([_lr(lr, factor), ["data.normalize=true"]])


def _raise_factor(removed: float, t: Thresholds) -> float:
    """The power of ten by which to raise the lr of a run that removed this share of its
    reducible loss (exponential convergence, rate ~ lr), so that it removes stall_target."""
    kt = -math.log(max(1.0 - removed, 1e-12))
    need = -math.log(1.0 - t.stall_target) / kt if kt > 0 else math.inf
    return 10.0 if removed < t.min_progress else _pow10(need, t.max_lr_factor)


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
    rho >= overshoot: the lr is cut by the power of ten at or above rho (at least 10x).
    Otherwise the share of the reducible loss (taken down to the lowest loss of the run, no
    lower than the floor) the first step removed, f1, is the most a plain step removes: kept
    up for the run's epochs it gets through k*T = -T ln(1 - f1) time constants (momentum's
    steps grow to 1 / (1 - beta) times the first). Fewer than first_step_epochs: the lr is
    raised as for a stall that removed 1 - exp(-k*T)."""
    train, grads = curves
    lr = cfg.get_float("optimizer.lr")
    if len(train) < 2 or lr is None or not math.isfinite(float(train[0])):
        return [], ""
    l0, l1 = float(train[0]), float(train[1])
    name = str(cfg.get("optimizer.name") or cfg.get("optimizer") or "").lower()
    rho = None
    if not math.isfinite(l1):
        rho = math.inf
    elif name in ("sgd", "momentum") and len(grads) and math.isfinite(float(grads[0])) \
            and grads[0] > 0:
        g0 = float(grads[0])
        clip = cfg.get_float("train.clip_grad_norm")
        gain = lr * g0 * g0 * (min(1.0, clip / g0) if clip and clip > 0 else 1.0)
        rho = 2.0 * (1.0 - (l0 - l1) / gain)
    elif l1 > l0 > 0:
        rho = 1.0 + math.sqrt(l1 / l0)
    if rho is not None:
        ev["first_step_overshoot"] = _r(min(rho, 1e6))
    if rho is not None and rho >= t.overshoot:
        factor = _pow10(rho, t.max_lr_factor)
        ev["lr_factor"] = factor
        return _lr(lr, 1 / factor), (
            " The learning rate is too high as well: the first update, a plain gradient step "
            f"(nothing had accumulated yet), went {min(rho, 1e6):.3g} times as far as the "
            "minimum along its own direction, so plain steps overshoot too.")
    low = float(np.nanmin(np.where(np.isfinite(train), train, np.nan)))
    if not (l0 > low and l1 < l0):
        return [], ""
    f1 = min((l0 - l1) / (l0 - low), 1.0)
    epochs = cfg.get_int("train.epochs") or len(train)
    beta = cfg.get_float("optimizer.momentum") or (0.9 if name == "momentum" else 0.0)
    kt = -epochs * math.log(max(1.0 - f1, 1e-300)) / max(1.0 - beta, 1e-3)
    ev["first_step_time_constants"] = _r(min(kt, 1e6))
    if kt >= t.first_step_epochs:
        return [], ""
    factor = _raise_factor(1.0 - math.exp(-kt), t)
    ev["lr_factor"] = factor
    return _lr(lr, factor), (
        " The learning rate is too low as well: the first update, a plain gradient step "
        f"(nothing had accumulated yet), removed {f1:.2g} of the reducible loss; kept up for "
        f"{epochs} epochs that is {kt:.2g} time constants, a stall once the steps are plain.")


def _memorises(cfg: _Params, ev: dict[str, Any], t: Thresholds) -> bool:
    """Enough parameters per training point, with label noise, to memorise it (capacity)."""
    noise, n = cfg.get_float("data.noise"), cfg.get_float("data.n_train")
    p = _n_params(cfg)
    if not noise or noise <= 0 or not n or n <= 0 or p is None \
            or cfg.get_bool("train.early_stop"):
        return False
    ev["params_per_train_point"] = _r(p / n)
    return p / n >= t.capacity


def _n_params(cfg: _Params) -> int | None:
    """Trainable parameters of the sweeps models (sweeps.model), from the config; None for
    another model."""
    name = str(cfg.get("model.name") or cfg.get("model") or "").lower()
    if name == "linear":
        return 2
    if name == "poly":
        degree = cfg.get_int("model.degree")
        return degree + 1 if degree is not None else None
    if name == "mlp":
        h, layers = cfg.get_int("model.hidden"), cfg.get_int("model.layers")
        if h is None or layers is None:
            return None
        return 2 * h + (layers - 1) * (h * h + h) + h + 1
    return None


def _nonempty(options: list[list[str]]) -> list[list[str]]:
    return [o for o in options if o]


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


def _floor(train: np.ndarray, smooth: np.ndarray, noise: Optional[float], jitter: float,
           t: Thresholds) -> tuple[float, float]:
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
    used only for a curve that did not fall at all (it sat at its floor if at or below it)."""
    low = float(np.min(smooth))
    init, n = float(train[0]), len(train)
    fallen = init - low
    if fallen <= 0:  # no net fall: no shape to read
        flat = min(noise * noise, low) if noise is not None and math.isfinite(noise) else 0.0
        return float(min(flat, low)), 0.0
    if n < 8:  # too short for quarters: take it at its word
        return low, 0.0
    best = np.minimum.accumulate(smooth)  # progress: the lowest level reached so far (a spike
    #   or a swing later in the run is judged as such, not read as a change of course)
    q = [init] + [float(best[round(k * (n - 1) / 4)]) for k in (1, 2, 3, 4)]
    d1, _, d3, d4 = (q[k] - q[k + 1] for k in range(4))
    sig = max(t.level_noise * jitter, t.nothing_to_learn * fallen)
    if d4 <= sig:
        return low, 0.0
    r = max(d4 / d3 if d3 > sig else math.inf, (d4 / d1) ** (1 / 3) if d1 > 0 else math.inf)
    m = 4 * (t.horizon - 1)  # quarters still to come within the horizon
    rest = d4 * (m if r >= 1 else r * (1 - r**m) / (1 - r))
    # Never below 0 for a loss that is never negative.
    lower = 0.0 if float(np.nanmin(train)) >= 0 else -math.inf
    return float(min(max(low - rest, lower), low)), r


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
