"""What predicting a constant scores (a run's baseline loss) and whether a run sits there."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from sweeps.diagnose.curves import _smooth
from sweeps.diagnose.params import Params
from sweeps.diagnose.thresholds import Thresholds

# A loss the run names (``train.loss`` or its common names) that is not a cross-entropy: its
# baseline is the targets' spread, which the curve alone does not tell.
_NOT_CROSS_ENTROPY = ("mse", "mae", "l1", "l2", "huber", "smooth", "squared", "absolute",
                      "regress", "hinge", "cosine", "poisson", "gauss", "kl")


def baseline(cfg: Params, end: float, val: np.ndarray,
             t: Thresholds) -> tuple[Optional[float], Optional[int]]:
    """The run's baseline loss and, where it is read off the curves, the number of classes.

    A run that records it (``data.baseline_loss``, ``baseline_loss``, ...) is taken at its word:
    (that value, None). Otherwise a classifier that predicts the same distribution for every
    input scores the class frequencies' entropy: ln k for k balanced classes, a little less when
    they are not. A run whose train loss (smoothed, ``end``) ends in that band below ln k and
    whose validation loss ends level with it (a constant prediction scores about the same on
    both splits; a model that learned something from its inputs fits its own training points
    better), or ends within chance_share of ln k having never been in the band's lower half
    (it fitted noise in its own points, nothing that holds on others), sits at what a k-class
    classifier scores without looking at its inputs: (ln k, k).
    The band reaches chance_share below ln k, and at most a quarter of the way to ln(k - 1), so
    that it covers at most half of the losses near ln k however many classes (and half that
    above ln k: a bias still settling, minibatches' class mix). A run whose loss is named as
    another kind (mean squared error, ...) is not read this way. (None, None) when nothing
    says."""
    recorded = cfg.get_float("data.baseline_loss")
    if recorded is not None:
        return recorded, None
    named = str(cfg.get("train.loss") or "").lower()
    if any(word in named for word in _NOT_CROSS_ENTROPY):
        return None, None
    finite = val[np.isfinite(val)]
    if not (math.isfinite(end) and end > 0) or len(finite) < t.min_epochs \
            or len(finite) < len(val):
        return None, None
    level = float(_smooth(finite, t.smooth)[-1])
    if end > math.log(10**6):
        return None, None
    for k in (math.floor(math.exp(end)), math.floor(math.exp(end)) + 1):  # ln k <= end, > end
        if k < 2:
            continue
        top = math.log(k)
        below = min(t.chance_share, (top - math.log(k - 1)) / (4 * top))
        if not top * (1 - below) <= end <= top * (1 + below / 2):
            continue
        # val level with train; or at ln k itself, never in the band's lower half: whatever
        # the model fitted on its own points scores no better than chance on held-out ones
        if abs(level / end - 1) < t.chance_share or (
                abs(level / top - 1) < t.chance_share
                and float(np.min(finite)) >= top * (1 - below / 2)):
            return top, k
    return None, None


def learned_nothing(base: Optional[float], noise: Optional[float], judged: np.ndarray,
                    end: float, floor: float, t: Thresholds, above: bool = False) -> float:
    """How clearly a run sits at its baseline loss ``base`` (baseline()) with nothing below it in
    sight: the epochs given (the judged half; after swings, the last quarter) stay within
    chance_share of that loss and its projected floor is not lower.
    chance_share over the share of the baseline it removed (>= 1: it learned nothing from its
    inputs). 0 without a baseline, or where the data's noise alone leaves that much (``noise``,
    the run's ``data.noise``, squared). With ``above`` (a run that fell from its start) a floor
    chance_share or more above the baseline counts too, however far above: a model whose loss
    levels off worse than a constant prediction's has learned nothing useful from its inputs
    (raw inputs on wild scales, a collapsed net); where it sits there is not what decides."""
    if base is None or not (math.isfinite(base) and base > 0 and math.isfinite(end)):
        return 0.0
    if noise is not None and noise * noise >= (1 - t.chance_share) * base:
        return 0.0
    learned = 1.0 - end / base
    if learned >= t.chance_share or floor < (1 - t.chance_share) * base:
        return 0.0  # clearly below the baseline, or heading there
    near = -learned < t.chance_share and float(np.max(judged)) < (1 + t.chance_share) * base
    worse = above and floor >= (1 + t.chance_share) * base  # levels off clearly above it
    if not (near or worse):
        return 0.0
    return t.chance_share / max(learned, t.chance_share / 1e6)
