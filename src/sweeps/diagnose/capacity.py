"""Capacity: can the model memorise its training set's noise once it trains properly?"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from sweeps.config import ConfigError, n_params
from sweeps.diagnose.curves import _r
from sweeps.diagnose.params import Params as _Params
from sweeps.diagnose.thresholds import Thresholds


def _memorises(cfg: _Params, ev: dict[str, Any], t: Thresholds) -> bool:
    """Enough parameters per training point, with label noise, to memorise it (capacity)."""
    noise, n = cfg.get_float("data.noise"), cfg.get_float("data.n_train")
    p = _n_params(cfg)
    if not noise or noise <= 0 or not n or n <= 0 or p is None \
            or cfg.get_bool("train.early_stop"):
        return False
    ev["params_per_train_point"] = _r(p / n)
    if p / n >= t.capacity:
        return True
    # Fewer parameters per point: the fit absorbs noise**2 * p/n of noise, which val shows once
    # that is a material share of what the run starts with (the noise dominates the signal).
    l0 = ev.get("initial_loss")
    return p / n >= t.overfit_rise and l0 is not None and math.isfinite(l0) \
        and noise * noise * p / n >= t.overfit_rise * l0


def _n_params(cfg: _Params) -> int | None:
    """Trainable parameters of the sweeps models (sweeps.config.n_params), from the config;
    None for another model, or one whose sizes the params do not give."""
    model = SimpleNamespace(name=str(cfg.get("model.name") or cfg.get("model") or "").lower(),
                            degree=cfg.get_int("model.degree"), hidden=cfg.get_int("model.hidden"),
                            layers=cfg.get_int("model.layers"))
    try:
        return n_params(model)
    except (ConfigError, TypeError):
        return None
