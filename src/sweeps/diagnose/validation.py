"""The validation curve's measures: did val fall, did it turn up while train kept falling (and
how clearly), did the loop's early stopping end the run, and the patience that would."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from sweeps.config import TrainConfig
from sweeps.diagnose.curves import _jitter, _level, _r, _smooth, _val_sampling_sd
from sweeps.diagnose.params import Params as _Params
from sweeps.diagnose.thresholds import Thresholds


def _val_fell(val: np.ndarray, t: Thresholds) -> bool:
    """Val fell clearly (overfit_material of its start) before its lowest point."""
    vs = _level(val, t.smooth)
    return float(val[0] - np.min(vs)) >= t.overfit_material * abs(float(val[0]))


def _val_turn(train: np.ndarray, smooth: np.ndarray, val: np.ndarray, scale: float,
              cfg: "_Params", t: Thresholds, ev: Optional[dict[str, Any]] = None) -> bool:
    """Val climbs clearly above its minimum (reached well before the end, by more than its
    jitter and the val set's sampling noise) while train keeps falling."""
    return _val_turn_margin(train, smooth, val, scale, cfg, t, ev) >= 1


def _val_turn_margin(train: np.ndarray, smooth: np.ndarray, val: np.ndarray, scale: float,
                     cfg: "_Params", t: Thresholds, ev: Optional[dict[str, Any]] = None) -> float:
    """How clearly val turned up (_val_turn): the smallest of its conditions' measures over
    their thresholds (>= 1: every one holds)."""
    if len(val) < t.min_epochs:
        return 0.0
    vs = _level(val, t.smooth)
    i_min = int(np.argmin(vs))
    v_min, v_rise = float(vs[i_min]), float(vs[-1] - vs[i_min])
    fell = float(smooth[i_min] - smooth[-1])
    if ev is not None:
        ev.update(val_min_epoch=i_min, val_rise=_r(v_rise / max(abs(v_min), 1e-12)),
                  train_fall_after_val_min=_r(fell / scale))
    if v_rise <= 0:
        return 0.0

    def over(x: float, need: float) -> float:
        return x / need if need > 0 else math.inf

    return min(over(v_rise, t.overfit_rise * abs(v_min)),
               over(v_rise, t.overfit_noise * _jitter(val)),
               over(v_rise, t.overfit_sampling * _val_sampling_sd(cfg)),
               over(len(val) - 1 - i_min, max(t.overfit_gap_min, t.overfit_gap * len(val))),
               over(fell, t.overfit_train_fall * scale),
               over(t.overfit_train_fall * scale, _off_path(smooth, i_min)))


def _off_path(smooth: np.ndarray, i: int) -> float:
    """How far above its lowest level so far the (smoothed) train loss was when val reached its
    minimum, at epoch i: overfitting moves past val's best point on the way down, while a val
    minimum met when train was up in a swing is where the swing happened to land, and the rise
    after it is the swing's return (the benchmark's truth asks the same of the population)."""
    return float(smooth[i] - np.min(smooth[:i + 1]))


def _early_stop_at(val: np.ndarray, cfg: "_Params") -> Optional[int]:
    """The epoch at which the loop's early stopping (train.patience epochs without a new best
    val loss; 20 if unknown) would end this run, or None if it never would."""
    patience = cfg.get_int("train.patience") or TrainConfig.patience
    best, since = math.inf, 0
    for i, v in enumerate(val):
        best, since = (float(v), 0) if v < best else (best, since + 1)
        if since >= patience:
            return i
    return None


def _early_stopped(cfg: "_Params", val: np.ndarray, t: Thresholds) -> Optional[str]:
    """Did early stopping end the run before its epochs? None if not; else how val had moved
    before it stopped: "improved" (clearly below its start at its best), "worsened" (never
    clearly below its start, clearly above it at the end) or "flat"."""
    epochs = cfg.get_int("train.epochs")
    if not cfg.get_bool("train.early_stop") or epochs is None or len(val) >= epochs \
            or len(val) < t.min_epochs:
        return None
    vs = _smooth(val, t.smooth)
    clear = max(t.overfit_noise * _jitter(val), t.nothing_to_learn * abs(float(val[0])))
    if float(val[0] - np.min(vs)) > clear:
        return "improved"
    return "worsened" if float(vs[-1] - val[0]) > clear else "flat"


def _patient(cfg: _Params, ev: dict[str, Any]) -> list[str]:
    """Early stopping that fires on this run: with patience p it ends the run p epochs after
    val's minimum, and the run went on for ``after`` epochs past it. A patience (train.patience,
    20 if not given) above half of them would stop the run late in val's rise, or never: such a
    run gets that half (at least 1) as its patience."""
    if "val_min_epoch" not in ev:
        return ["train.early_stop=true"]
    after = int(ev["epochs_run"]) - 1 - int(ev["val_min_epoch"])
    patience = cfg.get_int("train.patience") or TrainConfig.patience
    if patience <= after // 2:
        return ["train.early_stop=true"]
    ev.update(patience_was=patience, epochs_past_val_min=after)
    return ["train.early_stop=true", f"train.patience={max(1, after // 2)}"]
