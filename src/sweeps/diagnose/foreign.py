"""Fixes in another script's own terms: a run whose params are not this project's config gets
its fix in that script's param names (``lr: 3.0 -> 0.3``) or in words, never in ``train.*``
overrides it does not have."""

from __future__ import annotations

from dataclasses import replace

from sweeps.diagnose.params import Params
from sweeps.diagnose.verdict import Diagnosis

# What each of this project's overrides means, for a script that does not have the key.
WORDS = {
    "train.zero_grad": "call optimizer.zero_grad() before each backward()",
    "train.early_stop": "stop at the validation minimum (early stopping)",
    "train.patience": "stop once validation has not improved for {value} epochs",
    "train.lr_schedule": "decay the learning rate over the run ({value} schedule)",
    "train.lr_schedule=constant": "keep the learning rate constant (no schedule)",
    "train.epochs": "train for {value} epochs",
    "train.clip_grad_norm": "clip the gradient norm at {value}",
    "data.normalize": "standardise the inputs (zero mean, unit variance)",
    "optimizer.weight_decay": "add weight decay {value}",
    "optimizer.lr": "set the learning rate to {value}",
}


def in_own_terms(d: Diagnosis, cfg: Params) -> Diagnosis:
    """``d`` with its fix and alternatives rewritten for a foreign run (unchanged for this
    project's own configs): a key the run's params have under a common name is written as
    ``name: old -> new``, anything else in words."""
    if cfg.own() or not d.fix:
        return d
    fix = [_say(o, cfg) for o in d.fix]
    alternatives = ["; ".join(_say(o, cfg) for o in a.split()) for a in d.alternatives]
    return replace(d, fix=fix, alternatives=alternatives)


def _say(override: str, cfg: Params) -> str:
    key, _, value = override.partition("=")
    src = cfg.source(key)
    if src is not None:
        old = cfg.get(key)
        return f"{src}: {old} -> {_like(value, old)}"
    return WORDS.get(override, WORDS.get(key, override)).format(value=value)


def _like(value: str, old: object) -> str:
    """``value`` spelt as the run's own param was (a Python bool stays True/False)."""
    if isinstance(old, str) and old in ("True", "False") and value in ("true", "false"):
        return value.capitalize()
    return value
