"""Ground truth from continuation runs (the rules are in benchmarks/generalisation.py's
docstring): pure functions of the run's curves and those of its continuations."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

GROWTH = 100.0  # diverged: C ends this many times above L0
SWING = 0.1  # oscillating: climbs back this share of the reducible loss ...
DECADE_SWING = 3.0  # ... or back to this multiple of its running minimum (a log scale) ...
MIN_CLIMB = 0.01  # ... when that climb is at least this share of the reducible loss
VAL_RISE = 0.1  # overfitting: smoothed val ends this share above its minimum ...
VAL_NOISE = 4.0  # ... and this many std devs of its jitter above it ...
VAL_MATERIAL = 0.05  # ... after falling this share of its start
TRAIN_FALL = 0.01  # ... while train fell this share of the reducible loss after the minimum
STALL = 1 - math.exp(-1)  # stalled: removed less than this share of the reducible loss
CHANCE = 0.05  # ... or nothing the run, C, K or Hi reached is this share below the loss of the
#   best constant prediction: the inputs taught the model nothing (added in the sixth session)


def _finite_min(*curves: Optional[list[float]]) -> float:
    vals = [v for c in curves if c for v in c if v is not None and math.isfinite(v)]
    return min(vals) if vals else math.inf


def _finite(c: list[float]) -> bool:
    return all(v is not None and math.isfinite(v) for v in c)


def _median(a: np.ndarray, w: int) -> np.ndarray:
    h = w // 2
    return np.array([np.median(a[max(0, i - h): i + h + 1]) for i in range(len(a))])


def _jitter(a: np.ndarray) -> float:
    d = np.diff(a)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2)) if len(d) else 0.0


def swing(curve: np.ndarray, reducible: float) -> tuple[float, float]:
    """(largest climb above the running minimum / R, largest multiple of its running minimum
    the loss climbs back to, among climbs >= MIN_CLIMB x R: a swing on a log scale)."""
    if len(curve) < 2:
        return 0.0, 0.0
    run_min = np.minimum.accumulate(curve)
    climb = curve - run_min
    rel = float(np.max(climb)) / reducible
    big = (climb >= MIN_CLIMB * reducible) & (run_min > 0)
    if not np.any(big):
        return rel, 0.0
    return rel, float(np.max(curve[big] / run_min[big]))


def _swings(curve: np.ndarray, reducible: float) -> bool:
    rel, ratio = swing(curve, reducible)
    return rel >= SWING or ratio >= DECADE_SWING


def judge(run: dict, cont: dict, hi: dict, const: Optional[dict],
          chance: Optional[float] = None) -> dict:
    """The symptom the continuation runs give a run. Each argument is a history
    (``train_loss``, ``val_loss`` lists); ``chance``: the training loss of the best constant
    prediction, where known. Returns {symptom, why, measures}."""
    tr = run["train_loss"]
    T = len(tr)
    l0 = float(tr[0])
    m: dict[str, float] = {"L0": l0}
    if not (_finite(tr) and _finite(run.get("val_loss") or [])):
        return {"symptom": "diverged", "why": "non-finite within the run", "measures": m}
    if float(tr[-1]) >= GROWTH * l0 > 0:
        return {"symptom": "diverged", "why": f"ends {tr[-1] / l0:.3g} x L0", "measures": m}
    c_tr = cont["train_loss"]
    c_blew = not _finite(c_tr) or float(c_tr[-1]) >= GROWTH * l0
    if float(tr[-1]) >= l0 and c_blew:
        return {"symptom": "diverged", "why": "ends above L0 and grows without bound at 10 T",
                "measures": m}
    l_ref = min(_finite_min(tr, c_tr, hi["train_loss"], (const or {}).get("train_loss")), l0)
    reducible = max(l0 - l_ref, 1e-12 * max(abs(l0), 1e-300))
    m.update(L_ref=l_ref)
    a = np.asarray(tr, dtype=float)
    rel, ratio = swing(a[T // 2:], reducible)
    m.update(swing=rel, swing_ratio=ratio)
    if rel >= SWING or ratio >= DECADE_SWING:
        c = np.asarray(c_tr, dtype=float)
        keeps = not _finite(c_tr) or _swings(c[-T:], reducible)
        if keeps:
            return {"symptom": "oscillating", "why": f"climbs back {rel:.3g} R (to x{ratio:.3g} "
                    "its running min) in the 2nd half, and still at 10 T", "measures": m}
        m["swing_settles_at_10T"] = 1.0
    sm = _median(a, 3)
    removed = (l0 - float(sm[-1])) / reducible
    m["removed"] = removed
    val = run.get("val_loss") or []
    if len(val) >= 8:
        v = np.asarray(val, dtype=float)
        vs = _median(v, 5)
        i = int(np.argmin(vs))
        rise = float(vs[-1] - vs[i])
        fell = float(v[0] - vs[i])
        c_val = cont.get("val_loss") or []
        c_end = float(_median(np.asarray(c_val[-5:], dtype=float), 5)[-1]) if c_val and \
            _finite(c_val[-5:]) else math.inf
        m.update(val_min_epoch=i, val_rise=rise / max(abs(vs[i]), 1e-300),
                 val_rise_10T=(c_end - vs[i]) / max(abs(vs[i]), 1e-300))
        if (rise >= VAL_RISE * abs(vs[i]) and rise >= VAL_NOISE * _jitter(v)
                and T - 1 - i >= max(5, 0.2 * T) and fell >= VAL_MATERIAL * abs(float(v[0]))
                and float(sm[i] - sm[-1]) >= TRAIN_FALL * reducible
                and c_end - vs[i] >= VAL_RISE * abs(vs[i])):
            return {"symptom": "overfitting", "why": f"val up {rise / abs(vs[i]):.1%} after "
                    f"its minimum at epoch {i} while train falls, still up at 10 T",
                    "measures": m}
    if chance is not None and chance > 0 and l_ref >= (1 - CHANCE) * chance:
        m["chance"] = chance
        return {"symptom": "stalled", "why": f"never below the best constant prediction's loss "
                f"{chance:.4g} (L_ref {l_ref:.4g}): nothing learned from the inputs",
                "measures": m}
    if removed < STALL:
        return {"symptom": "stalled", "why": f"removed {removed:.2f} of what 10 T / 10x lr "
                "remove", "measures": m}
    return {"symptom": "healthy", "why": f"removed {removed:.2f}, settled", "measures": m}
