"""Train vs validation loss of the runs labelled overfitting, one small panel per run."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sweeps.plots.style import (_HUGE, _PANEL, SYMPTOM_COLORS, _grid, _histories_by_run, _log_y,
                                _normalise, fmt_lr)


def _run_title(row) -> str:
    """'adam · lr=3e-2 · noise=1.0 · zero_grad=False', from the facet columns a run has."""
    parts = [str(row["optimizer"])] if row["optimizer"] != "-" else []
    parts += [f"lr={fmt_lr(row['lr'])}"] if row["lr"] != "-" else []
    rest = [f"{c}={row[c]}" for c in ("noise", "zero_grad") if row[c] != "-"]
    if len(" · ".join(parts + rest)) > 36:  # wider than a panel at this font size
        return " · ".join(parts) + "\n" + " · ".join(rest)
    return " · ".join(parts + rest) or str(row["name"])[:40]



def overfitting_curves(runs: pd.DataFrame, histories: pd.DataFrame,
                       max_runs: int = 12) -> Optional[Figure]:
    """Train vs validation loss for the runs labelled overfitting, one small panel per run.

    Args:
        runs: one row per run (run_id, name, symptom, and any facet columns).
        histories: long frame (run_id, epoch, train_loss, val_loss).
        max_runs: draw at most this many runs (the first ones in ``runs``).

    Train is solid, validation dashed (log y); a dot and a dotted vertical line mark the epoch of
    the lowest validation loss, where early stopping would have kept the weights. Returns None
    when no run is labelled overfitting.
    """
    df = _normalise(runs)
    df = df[df["symptom"] == "overfitting"]
    if len(df) == 0:
        return None
    hist = _histories_by_run(histories)
    shown = df.head(max_runs)
    ncols = min(4, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    fig = Figure(figsize=(_PANEL[0] * ncols, _PANEL[1] * nrows + 0.4))
    # room for: tick labels and the y label (left, and between panels), two-line panel titles
    # over tick labels (between rows), the suptitle (top), the x labels (bottom)
    axes = _grid(fig, nrows, ncols, left=0.75, right=0.15, top=0.75, bottom=0.5, wgap=0.5, hgap=0.7)
    color = SYMPTOM_COLORS["overfitting"]
    for k, ax in enumerate(axes.flat):
        if k >= len(shown):
            ax.set_axis_off()
            continue
        row = shown.iloc[k]
        # y given: the title is not moved above decorations (a tick layout per panel, ~0.07 s)
        ax.set_title(_run_title(row), fontsize=8.5, y=1.0)
        h = hist.get(row["run_id"])
        if h is None or not len(h):
            ax.text(0.5, 0.5, "no history", transform=ax.transAxes, ha="center", color="#888888")
            continue
        ep = h["epoch"].to_numpy(float)
        drawn = False
        for col, ls, label in (("train_loss", "-", "train"), ("val_loss", "--", "validation")):
            if col not in h:
                continue
            v = pd.to_numeric(h[col], errors="coerce").to_numpy(float)
            v = np.where(np.isfinite(v) & (v > 0) & (v < _HUGE), v, np.nan)
            if np.isnan(v).all():
                continue
            logged = ~np.isnan(v)  # a val logged every k epochs: join its points
            ax.plot(ep[logged], v[logged], color=color, ls=ls, lw=1.4, label=label)
            drawn = True
            if col == "val_loss":
                i = int(np.nanargmin(v))
                ax.axvline(ep[i], color="#666666", ls=":", lw=1)
                ax.plot([ep[i]], [v[i]], "o", color=color, ms=5, label=f"best val @ {int(ep[i])}")
        if drawn:
            _log_y(ax)
            ax.legend(fontsize=7, frameon=False)
        if k + ncols >= len(shown):  # nothing drawn below this one
            ax.set_xlabel("epoch")
        if k % ncols == 0:
            ax.set_ylabel("loss (log)")  # MSE for this tool's runs; another script's own loss
    more = f" (first {len(shown)} of {len(df)})" if len(df) > len(shown) else ""
    fig.suptitle(f"overfitting runs: train (solid) vs validation (dashed){more}", fontsize=11)
    return fig


