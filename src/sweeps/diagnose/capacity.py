"""Capacity: can the model memorise its training set's noise once it trains properly?"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from sweeps.config import ConfigError, n_params
from sweeps.diagnose.curves import _r
from sweeps.diagnose.params import Params as _Params
from sweeps.diagnose.thresholds import Thresholds


def _memorises(cfg: _Params, ev: dict[str, Any], t: Thresholds) -> str:
    """Why the model will memorise its training set once it trains properly ("" if it will not):
    enough parameters per training point, with label noise, to memorise it (capacity); or, where
    the run does not say how noisy its labels are (another script's run), at least half as many
    parameters as training points (interpolate): it fits the noise real labels carry as much as
    the signal, and from as many as points every label."""
    noise, n = cfg.get_float("data.noise"), cfg.get_float("data.n_train")
    p = _n_params(cfg)
    if not n or n <= 0 or p is None or cfg.get_bool("train.early_stop") \
            or (noise is not None and noise <= 0):
        return ""
    ev["params_per_train_point"] = _r(p / n)
    if noise is None:  # early stopping watches the validation loss: only where there is one
        fits = ("can fit every training label, noise included," if p >= n else
                "fits the noise in its labels as much as their signal (least squares with p "
                "weights on n points: p / (n - p - 1) of the noise comes back on val)")
        return (f" With {p:,} parameters for {n:,.0f} training points the model {fits} once it "
                "trains properly: stop early.") \
            if p / n >= t.interpolate and ev.get("val_epochs") else ""
    said = (" With noisy labels and this many parameters per training point, the model "
            "memorises the noise once it trains properly: stop early.")
    if p / n >= t.capacity:
        return said
    # Fewer parameters per point: the fit absorbs noise**2 * p/n of noise, which val shows once
    # that is a material share of what the run starts with (the noise dominates the signal).
    l0 = ev.get("initial_loss")
    return said if p / n >= t.overfit_rise and l0 is not None and math.isfinite(l0) \
        and noise * noise * p / n >= t.overfit_rise * l0 else ""


def _n_params(cfg: _Params) -> int | None:
    """Trainable parameters: the count the run logged (``model.n_params`` or a common name for
    it), else the sweeps model's (sweeps.config.n_params) from the config; None for another
    model, or one whose sizes the params do not give."""
    logged = cfg.get_float("model.n_params")
    if logged is not None and math.isfinite(logged) and logged > 0:
        return int(logged)
    model = SimpleNamespace(name=str(cfg.get("model.name") or cfg.get("model") or "").lower(),
                            degree=cfg.get_int("model.degree"), hidden=cfg.get_int("model.hidden"),
                            layers=cfg.get_int("model.layers"))
    try:
        return n_params(model)
    except (ConfigError, TypeError):
        return None
