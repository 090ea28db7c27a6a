"""The value checks that the config schemas' types cannot express: a predicate and a phrase for
what is allowed per dotted key (``optimizer.lr`` must be a finite number > 0, ...), the allowed
names taken from the schemas' Enum fields. Errors are one line per value: ``key=value: must be
what``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Optional, get_type_hints

from omegaconf import MISSING, DictConfig, OmegaConf

from sweeps.config import SCHEMAS, ConfigError, Names

def _name_checks() -> dict[str, tuple[Any, str]]:
    """A check for every field typed with Names: the value is one of its names. OmegaConf
    enforces this at compose time; this covers plain containers and swept values."""
    out: dict[str, tuple[Any, str]] = {}
    for group, schema in SCHEMAS.items():
        for key, kind in get_type_hints(schema).items():
            if isinstance(kind, type) and issubclass(kind, Names):
                names = kind.values()
                out[f"{group}.{key}"] = (lambda v, names=names: v in names, f"one of {names}")
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# key -> (predicate on the value, what is allowed). Types are checked by OmegaConf at compose
# time; the allowed names come from the schemas' Names fields, first.
_CHECKS: dict[str, tuple[Any, str]] = {
    **_name_checks(),
    "optimizer.lr": (lambda v: _finite(v) and v > 0, "a finite number > 0"),
    "optimizer.momentum": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "optimizer.weight_decay": (lambda v: _finite(v) and v >= 0, "a finite number >= 0"),
    "optimizer.beta1": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "optimizer.beta2": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "optimizer.alpha": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "optimizer.eps": (lambda v: _finite(v) and v > 0, "a finite number > 0"),
    "data.noise": (lambda v: _finite(v) and v >= 0, "a finite number >= 0"),
    "data.n_train": (lambda v: v >= 2, "an integer >= 2"),
    "data.n_val": (lambda v: v >= 1, "an integer >= 1"),
    "model.degree": (lambda v: 1 <= v <= 20, "an integer in [1, 20]"),
    "model.hidden": (lambda v: v >= 1, "an integer >= 1"),
    "model.layers": (lambda v: v >= 1, "an integer >= 1"),
    "train.epochs": (lambda v: v >= 1, "an integer >= 1"),
    "train.device": (lambda v: bool(re.match(r"^(auto|cpu|cuda|cuda:\d+|mps)$", v)),
                     "auto, cpu, cuda, cuda:N or mps"),
    "train.clip_grad_norm": (lambda v: v is None or (_finite(v) and v > 0), "null or a number > 0"),
    "train.lr_gamma": (lambda v: _finite(v) and 0 < v <= 1, "a number in (0, 1]"),
    "train.lr_step_size": (lambda v: v >= 1, "an integer >= 1"),
    "train.patience": (lambda v: v >= 1, "an integer >= 1"),
    "tracking.flush_every_s": (lambda v: _finite(v) and v > 0, "a finite number > 0"),
}


def allowed(key: str) -> Optional[str]:
    """What is allowed for a dotted key, or None when the schema's type says it all."""
    check = _CHECKS.get(key)
    return check[1] if check else None


def check_value(key: str, value: Any) -> Optional[str]:
    """Return a one-line problem for ``key=value``, or None when it is allowed."""
    check = _CHECKS.get(key)
    if check is None:
        return None
    ok, what = check
    try:
        good = bool(ok(value))
    except TypeError:
        good = False
    return None if good else f"{key}={value!r}: must be {what}"


def validate(cfg: DictConfig | Mapping[str, Any]) -> None:
    """Check every value the schema's types cannot. Raises ConfigError listing all problems."""
    problems = []
    for key in _CHECKS:
        value = OmegaConf.select(cfg, key, default=MISSING) if isinstance(cfg, DictConfig) else _dig(cfg, key)
        if value is MISSING:
            continue
        problem = check_value(key, value)
        if problem:
            problems.append(problem)
    if isinstance(cfg, DictConfig):
        low, high = OmegaConf.select(cfg, "data.x_low"), OmegaConf.select(cfg, "data.x_high")
        if low is not None and high is not None and not low < high:
            problems.append(f"data.x_high={high!r}: must be greater than data.x_low={low!r}")
    if problems:
        raise ConfigError("; ".join(problems))


def _dig(mapping: Mapping[str, Any], key: str) -> Any:
    node: Any = mapping
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node
