"""A second round of fixes, bracketed by what the first showed."""

from __future__ import annotations

import math
from typing import Optional, Sequence

from sweeps.diagnose.steps import _lr_set

_LR = "optimizer.lr="
_STOP = "train.early_stop=true"  # ends a run early; the steps before it are the same
_EPOCHS = "train.epochs="  # (with early stopping, a cap: fixes.py _capped) likewise


def _lr_only(fix: Sequence[str]) -> bool:
    return all(o.startswith((_LR, _EPOCHS)) or o == _STOP for o in fix)


def next_round(lr: Optional[float], first: Sequence[str], second: Sequence[str]) -> list[str]:
    """The fix for round 2: ``second``, the rerun's own fix, unless it would take the learning
    rate back onto or past the run's own ``lr``, from which ``first`` moved it the other way.
    The run at ``lr`` and the round-1 rerun then failed on either side (too high: it swung or
    blew up; too low: it stalled), with nothing else changed (both fixes set only the lr, early
    stopping and the epochs aside), so the lr that heals lies between them: round 2 takes
    their geometric mean (a bisection on the log scale lrs are searched on) instead of an lr
    already seen to fail."""
    out = list(second)
    l1, l2 = _lr_set(first), _lr_set(second)
    if lr is None or l1 is None or l2 is None or not (lr > 0 and l1 > 0) \
            or not (_lr_only(first) and _lr_only(second)):
        return out
    if l1 < lr <= l2 or l1 > lr >= l2:
        mid = float(f"{math.sqrt(lr * l1):.2g}")
        return [f"{_LR}{mid!r}" if o.startswith(_LR) else o for o in out]
    return out
