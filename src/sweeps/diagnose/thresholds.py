"""The five symptoms and every number the labeller decides with."""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    barely_moved: float = 0.05  # a curve that levelled off after falling less than this share
    #   of its initial loss has not shown its floor: the loss's least value is taken instead
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
    osc_log_swing: float = 3.0  # or: a judged epoch climbs back to >= this multiple of the
    osc_min_climb: float = 0.1  #   lowest loss so far, by >= this * reducible (a log scale:
    #   a loss spanning decades swings by multiples of itself, a small share of where it began)
    osc_noise: float = 1.5  # both, if the judged epochs look like noise: also >= this many
    #   times sqrt(2 ln n) std devs of their jitter (n judged epochs). Over n epochs iid noise
    #   reaches ~sqrt(2 ln n) std devs above its mean (10 epochs: 2.1, 100: 3.0), and its
    #   running minimum ends about as far below it: 2 is the whole range iid jitter spans, 1 the
    #   mean's own reach. A per-epoch loss is a mean over its epoch's batches, so jitter of a
    #   tenth of the reducible loss is mostly the weights bouncing (the lr too high for the
    #   gradient noise; the truth counts any such climb). Tuned on calibration in the tenth
    #   session: 2 called minibatch nets on moons whose loss jumped back 0.2-1.2 R healthy
    #   (1.5: +3 there, 1: +4); the hand-made iid tails of tests/test_diagnose.py, which 1
    #   calls oscillating, stay healthy at 1.5.
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
    overfit_train_fall: float = 0.01  # ... while train fell >= this * reducible after it, and
    #   was within this * reducible of its lowest so far at val's minimum (on its way down, not
    #   up in a swing whose return val's rise would be)
    overfit_material: float = 0.05  # a run not through its stall line is judged for overfitting
    #   too once val fell this share of its start before turning up (more epochs hurt it)
    # stalled
    stall_share: float = 1 - math.exp(-1)  # less than this share of the reducible loss removed:
    #   the run has not got through one time constant of its own decay (1 - 1/e ~ 0.63)
    stall_grad: float = math.exp(-0.5)  # or: the gradient norm still has this share of its
    #   largest (zero_grad on): near a minimum the excess loss goes as the squared gradient, so
    #   at most 1 - 1/e of it can be gone; catches a curve that flattens because the optimizer's
    #   steps shrank (RMSprop's warm-up, a decaying schedule) rather than because it arrived
    chance_share: float = 0.05  # or, where the run says what predicting a constant scores
    #   (``data.baseline_loss``: the targets' variance, the class frequencies' entropy): it ends
    #   less than this share below that: nothing learned from the inputs (a flat curve there is
    #   a net that collapsed onto the mean, not one that converged)
    # confidence
    clear_margin: float = 1.5  # a label whose deciding measure is this factor or more from its
    #   threshold is "clear", nearer it is "borderline"
    # fixes
    stall_target: float = 0.8  # a stalled run's lr is raised to remove this share in its epochs
    min_progress: float = 1e-6  # removed share below which a stall says nothing about the lr
    #   (a float32 loss resolves ~1e-7 of itself; above that, the drop at a small lr is first
    #   order in the lr, so the share removed measures the rate a raise multiplies)
    max_lr_factor: float = 1000.0  # the largest lr change a fix guesses (a stall, a swing); a
    #   stall's raise this large, blind, gives a decade to the epochs where it stops early
    adaptive_lr_cap: float = 1.0  # a stall's lr raise takes an adaptive optimizer (Adam,
    #   RMSprop, Adagrad, ...: every weight moves about lr a step) no higher than this: the scale
    #   of initialised weights (1 / sqrt(fan_in) and below), past which each step throws every
    #   weight farther than it could need to go; the epochs make up the rest of the pace
    max_epochs_factor: float = 100.0  # the most epochs a fix multiplies a run's by (a plateau
    #   that asks for more needs another remedy: the lr alternative, normalised inputs)
    stop_cap: float = 10.0  # a fix that stops early caps the epochs at this many times
    #   the run's (early stopping ends it; a raised lr's pace is a guess, a cut lr is slower)
    max_lr_cut: float = 1e6  # a diverged run's cut: its per-step growth g puts lr x the
    #   stiffest curvature at >= 1 + sqrt(g) (gradient descent on a quadratic), a measure, so
    #   it is not held to max_lr_factor; this only bounds a growth read off a few epochs
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
    capacity: float = 0.2  # model parameters >= this share of the training points, with
    #   noisy labels: least squares absorbs p/n of the noise variance (E[train MSE] = noise**2 *
    #   (1 - p/n)) and a converged fit errs by noise**2 * (1 + p/n) on new points: 2x the
    #   overfit_rise line above the noise floor, so wherever gradient descent's path passes
    #   nearer the truth than the fit (it fits weak directions, and the noise in them, last),
    #   val turns up once the run's other fault is fixed, and the fix adds early stopping.
    #   From p/n = overfit_rise on, also when that absorbed noise is >= overfit_rise x the
    #   initial loss (the noise dominates). (Measured with benchmarks/ground_truth.py's truth:
    #   a cubic on 20 points at noise 0.5, p/n = 0.2, overfits at 7 of 10 seed x optimizer;
    #   the line on 12 points, 1/6, at noise 2.0 at seed 1, not at noise 0.5.)
    interpolate: float = 0.5  # where the run does not say how noisy its labels are: model
    #   parameters >= this share of the training points fit the noise real labels carry as
    #   much as the signal (least squares with p weights on n points: the noise it fits costs
    #   val sigma**2 p / (n - p - 1), at least the noise itself from p = (n - 1) / 2; at p = n it
    #   fits every label), so a fix that makes it train properly adds early stopping (it needs
    #   a validation curve)


DEFAULT = Thresholds()


