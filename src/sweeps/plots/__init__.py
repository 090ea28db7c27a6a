"""Data in, matplotlib Figures out: loss curves, symptom maps, overfitting curves and the
explainer's fitted-line picture, from the runs/histories frames analysis builds from the store.
Object-oriented matplotlib only (no pyplot, no global state); only ``save``/the GIF write files.

The names below load their module (and matplotlib) on first use, so ``sweeps.plots.background``
can be imported by a process that draws nothing itself."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "SYMPTOM_COLORS": "style", "symptom_of": "style", "fmt_loss": "style", "fmt_lr": "style",
    "save": "style",
    "loss_curves": "curves", "MAX_REPEATS": "curves",
    "symptom_map": "maps",
    "overfitting_curves": "overfit",
    "fitted_line": "fitted", "fitted_line_gif": "fitted",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
