"""Causes and fixes: the overrides that heal a run with a given symptom."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from sweeps.config import OptimizerName
from sweeps.diagnose.capacity import _memorises
from sweeps.diagnose.curves import _r
from sweeps.diagnose.params import Params as _Params, adaptive, heavy_ball
from sweeps.diagnose.steps import (_blind_raise, _lr, _lr_set, _nice, _overflow_growth,
                                   _pace_need, _plain_lr, _pow10, _raise_factor, _ramp, _room,
                                   _steps_per_epoch)
from sweeps.diagnose.thresholds import Thresholds
from sweeps.diagnose.validation import _patient
from sweeps.diagnose.verdict import Diagnosis


def _verdict(symptom: str, cfg: _Params, ev: dict[str, Any], t: Thresholds,
             curves: tuple[np.ndarray, np.ndarray], *, ratio: float = 1.0, note: str = "",
             early_stop_first: bool = False) -> Diagnosis:
    """Cause, THE fix (every fault found, applied together) and alternatives for a symptom.
    ``curves``: (train loss, gradient norm). ``ratio``: diverged, the per-epoch growth of the
    loss; oscillating, how far the swing exceeds what is allowed; stalled, the share removed.
    ``early_stop_first``: oscillating, val turned up before the swings began; overfitting,
    early stopping would not cut into swings; stalled, val already rises while train falls."""
    lr = cfg.get_float("optimizer.lr")
    if symptom == "healthy":
        return Diagnosis(symptom, note or "The loss fell to what the data allows and settled.",
                         [], ev)
    # The symptom's own remedies, the most likely to heal first: options[0] is the fix for the
    # fault the curve shows, the rest are alternatives to it.
    if symptom == "diverged":
        steps = _steps_per_epoch(cfg)
        ratio = ratio ** (1.0 / steps)
        overflow = _overflow_growth(ev.get("first_nonfinite_epoch", -1), steps)
        if overflow > ratio:
            ratio = ev["overflow_growth_per_step"] = _r(overflow)
        if heavy_ball(cfg) > 0:
            ev["momentum"] = heavy_ball(cfg)
    # Early stopping ends a longer run where it ended this one: more epochs are no remedy.
    if symptom == "stalled" and "baseline_loss" in ev:
        cause, options = _collapsed(lr, ev, t, cfg.get_bool("data.normalize"), _raw_inputs(cfg))
    else:
        cause, options = _symptom_fix(symptom, lr, ev, t, ratio, early_stop_first,
                                      cfg.get_float("optimizer.weight_decay"),
                                      longer=not cfg.get_bool("train.early_stop"),
                                      room=_room(cfg, curves, lr) if symptom == "stalled" else None,
                                      raw=_raw_inputs(cfg), adaptive=adaptive(cfg))
    if symptom == "overfitting":
        options = [_patient(cfg, ev) if o == ["train.early_stop=true"] else o for o in options]
        if any(o.startswith("train.patience=") for o in options[0]):
            cause += (f" Early stopping with a patience of {ev['patience_was']} epochs would end "
                      f"it late in val's rise or never: it went on {ev['epochs_past_val_min']} "
                      "epochs past val's minimum, so the patience is cut to half of them.")
    ramp = _ramp(cfg, curves[0], lr, ev) if symptom in ("diverged", "oscillating") else None
    if ramp:
        cause, options = ramp[0], [ramp[1], *options]
    # Can the model memorise this data once the run trains properly? Then early stopping goes
    # with any fix that is not about overfitting already.
    also_memorises = _memorises(cfg, ev, t) if symptom != "overfitting" else ""
    memorises = bool(also_memorises)
    if symptom == "stalled" and early_stop_first and not memorises \
            and not cfg.get_bool("train.early_stop"):
        memorises = True
        also_memorises = (" The validation loss already rises while the training loss falls: "
                          "a larger learning rate gets there sooner, so stop early too.")
    stop = ["train.early_stop=true"] if memorises else []
    if cfg.get_bool("train.zero_grad") is not False:
        fix = options[0] if options else []
        fix = fix + [s for s in stop if s not in fix]
        return _capped(symptom, cause + (also_memorises if stop and fix != stop else ""), fix,
                       ev, [" ".join(o) for o in options[1:]], t, cfg)

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
        return _capped(symptom, cause + why, fix, ev,
                       [a for a in dict.fromkeys(alternatives) if a != " ".join(fix)], t, cfg)
    # Stalled or overfitting: the curve names its own fault (too low an lr, memorising); the
    # missing zero_grad() comes on top. A stalled run's running sum only made its steps larger
    # than plain ones, so the lr it needs is at least the one the stall asks for; and at least
    # the one the first update, a plain step, asks for (_plain_lr), where that is larger. A
    # curve that speeds up is what the running sum does (its steps grow every step), not a
    # plateau it leaves: more epochs at this lr do not make up plain steps' pace. (SGD and
    # momentum: adaptive optimizers scale the sum's step back to about lr.)
    first = options[0] if options else []
    why = ""
    summed = str(cfg.get("optimizer.name") or "").lower() in (OptimizerName.sgd,
                                                               OptimizerName.momentum)
    if symptom == "stalled" and lr is not None and summed:
        plain, why = _plain_lr(curves, cfg, t, seen := dict(ev))
        if plain and (_lr_set(plain) or 0.0) > max(_lr_set(first) or 0.0, lr):
            first = [o for o in first if not o.startswith(("optimizer.lr=", "train.epochs="))]
            first = plain + first
            cause = ("The loss is still falling far from where it is heading, moved along only "
                     "by the growing steps of a running sum.")
            ev.update(lr_factor=seen["lr_factor"], **{k: v for k, v in seen.items()
                                                      if k.endswith("time_constants")})
        else:
            why = ""
    fix = list(dict.fromkeys(zero + first + stop))
    cause += " Also, " + accumulate + why + (also_memorises if memorises else "")
    return _capped(symptom, cause, fix, ev,
                   [" ".join(dict.fromkeys(zero + o + stop)) for o in options[1:]], t, cfg)


def _capped(symptom: str, cause: str, fix: list[str], ev: dict[str, Any],
            alternatives: list[str], t: Thresholds, cfg: _Params) -> Diagnosis:
    """The Diagnosis, with the epochs made a cap where THE fix stops early, changes how the run
    trains (the lr, zero_grad(), the inputs) and sets no epochs: the run ends once val stops
    improving, so they go up to stop_cap x the run's (as set, or as run), the horizon a
    stall is judged over. A raised lr's pace is read off a curve, a cut lr moves slower: either
    may need more epochs than the run had, and the extra ones cost only what the run still
    gains from them. (Overfitting's fix is early stopping of a run that went on too long.)
    A stall's blind 1000x raise under that guard gives a decade to the cap first
    (steps._blind_raise)."""
    epochs = max(cfg.get_int("train.epochs") or 0, ev.get("epochs_run") or 0)
    gentler = _blind_raise(fix, ev, cfg, t, epochs) if symptom == "stalled" else None
    if gentler:
        fix, cause = gentler[0], cause + gentler[1]
    changes = [o for o in fix if not o.startswith(("train.early_stop=", "train.patience="))]
    if symptom != "overfitting" and "train.early_stop=true" in fix and epochs and changes \
            and not any(o.startswith("train.epochs=") for o in fix):
        fix = fix + [f"train.epochs={int(epochs * t.stop_cap)}"]
        cause += (f" Early stopping makes the epochs a cap: up to {t.stop_cap:g} times the "
                  "run's, in case the fixed run trains slower than this curve says.")
    return Diagnosis(symptom, cause, fix, ev, alternatives)


def _symptom_fix(symptom: str, lr: float | None, ev: dict[str, Any], t: Thresholds,
                 ratio: float, early_stop_first: bool,
                 weight_decay: float | None = None,
                 longer: bool = True,
                 room: Optional[float] = None,
                 raw: bool = False, adaptive: bool = False) -> tuple[str, list[list[str]]]:
    """The cause of a symptom and its remedies, each a list of overrides, the most likely to
    heal the run first (a remedy needing the lr is left out when the lr is unknown)."""
    if symptom == "diverged":
        # 10x, or more when the growth says 10x is not enough: gradient descent on a quadratic
        # grows the loss by (lr*lam - 1)**2 per step (ratio: the growth per optimizer step), so
        # lr*lam ~ 1 + sqrt(growth); aim at 1. Heavy ball (momentum beta) grows by about
        # (lr*lam - 1 - beta)**2, and its steady step is lr / (1 - beta) times the gradient:
        # aim that effective lr at 1, i.e. lr*lam at 1 - beta.
        beta = ev.get("momentum", 0.0)
        factor = _pow10((1 + beta + math.sqrt(max(ratio, 0.0))) / (1 - beta), t.max_lr_cut)
        ev["lr_factor"] = factor
        cause = "The learning rate is too high: each step overshoots further and the loss blows up."
        if beta:
            cause += (f" Under momentum {beta:g} each steady step is {1 / (1 - beta):.3g} times "
                      "lr x the gradient, and the cut covers that too.")
        if "overflow_growth_per_step" in ev:
            cause += (f" It overflowed within its first epoch's updates, which takes growing at "
                      f"least {ev['overflow_growth_per_step']:.3g}x an update"
                      + (f": the lr is cut {factor:,.0f}x." if lr else "."))
        return cause, _nonempty([_lr(lr, 1 / factor), ["train.clip_grad_norm=1.0"]])
    if symptom == "oscillating":
        # A bouncing gradient step costs loss ~ lr**2: cut lr by sqrt(swing / allowed swing), at
        # least 10x. An adaptive optimizer's step is about lr long whatever the gradient, so
        # the loss a bounce climbs back by is its slope times that length: ~ lr, cut by the
        # ratio itself.
        factor = _pow10(ratio if adaptive else math.sqrt(ratio), t.max_lr_factor)
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
        # 0.01, or 10x a decay the run already had and still overfitted with
        decay = 0.01 if not weight_decay or weight_decay <= 0 else max(0.01, 10 * weight_decay)
        options = [["train.early_stop=true"], [f"optimizer.weight_decay={float(f'{decay:.6g}')!r}"]]
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
    options = [_lr(lr, factor), ["data.normalize=true"]]
    epochs = ev.get("epochs_run")
    if room is not None and factor > room:
        # The first plain step already went 1/room of the way to the minimum along the
        # gradient: a factor-x lr overshoots the stiff directions while the flat ones stall.
        ev["lr_room"] = _r(room)
        if room >= 10:
            factor = ev["lr_factor"] = 10.0 ** math.floor(math.log10(room))
            options[0] = _lr(lr, factor)
        elif room < 1:
            # Past the minimum already: the stiffest direction zig-zags across its valley at
            # lr x lambda ~ 2, so the gradient never shrinks (that, not the loss, is the stall).
            cut = ev["lr_factor"] = _pow10(1 / room, t.max_lr_factor)
            cause = (f"The gradient does not shrink because the learning rate is too high for "
                     f"the stiffest direction: the first step went {1 / room:.2g} times the way "
                     "to the minimum along the gradient, so the weights zig-zag across the "
                     "valley instead of settling.")
            return cause, _nonempty([_lr(lr, 1 / cut), ["train.lr_schedule=cosine"]])
        else:
            cause = (f"The loss barely moves, yet the learning rate is near what the curvature "
                     f"allows: the first step went {1 / room:.2g} of the way to the minimum "
                     "along the gradient, so a 10x lr overshoots. The loss is ill-conditioned "
                     "(inputs on different scales: normalise them) or on a plateau (vanishing "
                     "gradients): more epochs at this lr.")
            more = _more_epochs(epochs, ratio, t) if longer else []
            return cause, _nonempty([more, ["data.normalize=true"]])
    capped = bool(adaptive and lr and lr * factor > t.adaptive_lr_cap)
    if capped:
        factor = ev["lr_factor"] = max(10.0 ** math.floor(math.log10(t.adaptive_lr_cap / lr)
                                                          + 1e-9), 1.0)
        options[0] = _lr(lr, factor) if factor > 1 else []
    longer_note = ""
    rest = _pace_need(ratio, t) / factor if ratio >= t.min_progress else 1.0
    if (factor >= t.max_lr_factor or capped) and rest > 1 and epochs and longer:
        # The pace asks for more than the largest lr raise a fix guesses: the time a run gets is
        # lr x epochs, so the epochs make up the rest (a net this slow may sit on a plateau).
        ev["epochs_factor"] = _r(min(rest, t.max_epochs_factor))
        options[0] = options[0] + [f"train.epochs={int(_nice(epochs * ev['epochs_factor']))}"]
        asked = float(f"{rest * factor:.2g}")
        longer_note = (f" Its pace asks for about {asked:,.0f} times the lr x epochs it had, more "
                       f"than a {factor:,.0f}x lr: the epochs make up the rest.")
        if capped:
            longer_note = (f" Its pace asks for about {asked:,.0f} times the lr x epochs it had; "
                           f"this optimizer moves every weight about lr a step, so the lr goes "
                           f"no higher than {t.adaptive_lr_cap:g} and the epochs make up the "
                           "rest.")
    if raw and ratio < t.barely_moved and options[0]:
        # Barely moved on inputs that were never standardised: features on scales far from 1
        # saturate the units they feed (the gradient vanishes) or make the loss ill-conditioned,
        # so no lr alone gets through. Normalise them and raise the lr as the pace asks.
        cause = ("The loss barely moves: the inputs are not normalised (features on scales far "
                 "from 1 saturate the units they feed, so the gradients vanish) or the learning "
                 "rate is too low.")
        options = [options[0] + ["data.normalize=true"], options[0]]
    if ev.get("tail_ratio", 0.0) > 1 and epochs and longer:
        # Still speeding up: the run is leaving a plateau (a saddle, saturated units), where a
        # larger lr meets the sharper curvature beyond it. More epochs at this lr finish what
        # has begun: as many times the epochs as the lr factor its pace asks for.
        cause = ("The loss is still falling faster and faster at the end: the run is leaving a "
                 "plateau (vanishing gradients, a saddle) and was stopped while it did.")
        options.insert(0, _more_epochs(epochs, ratio, t))
    if not any(o.startswith("optimizer.lr=") for o in options[0]):
        longer_note = ""  # the fix is more epochs at this lr: the lr x epochs raise is not it
    return cause + longer_note, _nonempty(options)


def _collapsed(lr: Optional[float], ev: dict[str, Any], t: Thresholds,
               normalized: Optional[bool], raw: bool) -> tuple[str, list[list[str]]]:
    """A run that sits at its baseline loss (what predicting a constant scores). Where its loss
    first rose well above its start (``peak_over_initial``), the first steps overshot and left
    the units saturated or dead: cut the lr as for a loss that blew up by that much (a step
    much longer than the way to the minimum grows the loss ~ its square); inputs the run says
    are raw are standardised first even then. Otherwise the gradients vanish: inputs on wild
    scales (normalise them) or an lr far too low."""
    cause = (f"The loss sits at {ev['baseline_loss']:.4g}, what predicting the same value for "
             "every input scores (the mean target; for a classifier, the class frequencies): "
             "the model has learned nothing from its inputs.")
    if ev.get("learned_share", 0.0) <= -t.chance_share:  # stays above it (chance.learned_nothing)
        cause = (f"The loss fell from {ev['initial_loss']:.4g} but levels off near "
                 f"{ev['floor']:.4g}, above the {ev['baseline_loss']:.4g} that predicting the "
                 "same value for every input scores (the mean target; for a classifier, the "
                 "class frequencies): the model does worse than ignoring its inputs.")
    k = ev.get("baseline_classes")
    if k:
        cause = (f"The loss sits at about ln {k} = {ev['baseline_loss']:.4g} on the training and "
                 f"the validation set alike: what a {k}-class classifier scores by predicting "
                 "the class frequencies whatever its input (if this loss is a cross-entropy; "
                 "log baseline_loss, or pass --baseline-loss, to say what a constant scores). "
                 "The model has learned nothing from its inputs.")
    rose = ev.get("peak_over_initial")
    norm = [] if normalized else ["data.normalize=true"]
    if rose:
        factor = ev["lr_factor"] = _pow10(1 + math.sqrt(rose), t.max_lr_factor)
        cause += (f" Its first steps overshot (the loss rose to {rose:.3g} times its start) and "
                  "left the units saturated or dead, where the gradient vanishes: the learning "
                  "rate is too high for inputs on these scales.")
        cut, clip = _lr(lr, 1 / factor), ["train.clip_grad_norm=1.0"]
        # Inputs the run says are raw (_raw_inputs): the curvature goes as their squared scale,
        # which standardising removes at this lr (a cut as large leaves unit-scale weights
        # unmoved).
        return cause, _nonempty([norm, cut, clip] if raw else [cut, norm, clip])
    ev["lr_factor"] = 10.0
    cause += (" The gradients vanish (saturated or dead units, inputs on scales far from 1) or "
              "the learning rate is far too low.")
    return cause, _nonempty([norm, _lr(lr, 10.0)] if norm else [_lr(lr, 10.0)])


def _raw_inputs(cfg: _Params) -> bool:
    """The run says its inputs were not standardised (``data.normalize`` false) and does not say
    they are on a unit scale anyway: where it gives their range (``data.x_low``, ``data.x_high``,
    uniform between), their spread is at least 1/10 and their root mean square at most 10 and
    at most 10x the spread (nothing to saturate, no offset that ill-conditions the loss)."""
    if cfg.get_bool("data.normalize") is not False:
        return False
    low, high = cfg.get_float("data.x_low"), cfg.get_float("data.x_high")
    if low is None or high is None or not high > low:
        return True
    spread = (high - low) / math.sqrt(12.0)
    rms = math.sqrt(spread * spread + (high + low) ** 2 / 4)
    return not (0.1 <= spread and rms <= min(10.0, 10.0 * spread))


def _more_epochs(epochs: Optional[int], removed: float, t: Thresholds) -> list[str]:
    """``train.epochs=`` as many times the run's epochs as the lr factor its pace asks for (at
    most max_epochs_factor), rounded to a number a person would type; [] without epochs."""
    if not epochs:
        return []
    need = min(_raise_factor(removed, t, cap=False), t.max_epochs_factor)
    return [f"train.epochs={int(_nice(epochs * need))}"]


def _nonempty(options: list[list[str]]) -> list[list[str]]:
    return [o for o in options if o]
