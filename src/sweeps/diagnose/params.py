"""Dotted-key reads of a run's config: nested mappings or MLflow's flat string params."""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import numpy as np


class Params:
    """Dotted-key reads from a nested mapping (or attribute tree) or MLflow's flat string params."""

    def __init__(self, config: Any) -> None:
        self.config = config if config is not None else {}

    def get(self, key: str) -> Any:
        node: Any = self.config
        if isinstance(node, Mapping) and key in node:
            return node[key]
        for part in key.split("."):
            if isinstance(node, Mapping):
                if part not in node:
                    return None
                node = node[part]
            elif hasattr(node, part):
                node = getattr(node, part)
            else:
                return None
        return node

    def get_float(self, key: str) -> Optional[float]:
        v = self.get(key)
        if v is None or isinstance(v, bool):
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            return None  # "None", "null", "" and other non-numbers

    def get_int(self, key: str) -> Optional[int]:
        v = self.get_float(key)
        return int(v) if v is not None and math.isfinite(v) else None

    def get_bool(self, key: str) -> Optional[bool]:
        v = self.get(key)
        if isinstance(v, str):
            return {"true": True, "false": False, "1": True, "0": False}.get(v.strip().lower())
        return bool(v) if isinstance(v, (bool, int, np.bool_)) else None
