"""The symptom map: every run of a sweep by lr x optimizer, one panel per noise level and
zero_grad setting, coloured by its label and annotated with its final loss."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from sweeps.plots.style import (_HUGE, _SEVERITY, SYMPTOM_COLORS, _by_model, _facet_title, _grid,
                                _legends_right, _levels, _message_figure, _normalise, _suptitle, _symptom_handles,
                                _text_color, fmt_loss, fmt_lr)


def _cell_summary(cell: pd.DataFrame) -> tuple[str, str]:
    """(symptom, annotation) for the runs in one map cell: the most common symptom (ties go to
    the more severe) and the median final train loss, plus the count when there are several."""
    counts = Counter(cell["symptom"])
    symptom = max(counts, key=lambda s: (counts[s], -_SEVERITY.index(s)))
    losses = cell["final_train_loss"].to_numpy(float)
    losses = np.where(losses >= _HUGE, np.inf, losses)
    fin = losses[~np.isnan(losses)]
    text = fmt_loss(np.median(fin)) if len(fin) else "nan"
    n, k = len(cell), counts[symptom]
    if n > 1:
        text += f"\nn={n}" if k == n else f"\n{k}/{n}"
    return symptom, text


def symptom_map(runs: pd.DataFrame) -> dict[str, Figure]:
    """A grid of symptoms over the sweep, one Figure per model.

    Args:
        runs: one row per run (symptom, final_train_loss, optimizer, lr, noise, zero_grad, model).

    Each panel (columns: noise level, rows: zero_grad) has lr across (ascending) and optimizer
    down; a cell is coloured by its run's symptom and annotated with its final train loss. Cells
    holding several runs (seeds) take the most common symptom and show the median loss and
    "n=<runs>", or "k/n" when only k of the n runs share that symptom. Returns {model: Figure}.
    """
    df = _normalise(runs)
    if len(df) == 0:
        return {"all": _message_figure("no runs", "symptom map")}
    return {model: _map_figure(sub, model) for model, sub in _by_model(df).items()}


def _map_figure(df: pd.DataFrame, model: str) -> Figure:
    lrs, opts = _levels(df, "lr"), _levels(df, "optimizer")
    noises, zgs = _levels(df, "noise"), _levels(df, "zero_grad")
    pw, ph = max(2.6, 0.62 * len(lrs) + 0.9), max(1.6, 0.42 * len(opts) + 1.0)
    narrow, rotate = len(noises) == 1, len(lrs) > 5
    fig = Figure(figsize=(pw * len(noises) + 1.5, ph * len(zgs) + 0.6))
    # room for: optimizer names and the y label (left), the suptitle and panel titles (top), lr
    # labels and the x label (bottom), the legends (right); shared axes: no inner tick labels
    axes = _grid(fig, len(zgs), len(noises), left=0.8, right=1.45, top=0.9 if narrow else 0.65,
                 bottom=0.8 if rotate else 0.55, wgap=0.15, hgap=0.35, sharex=True, sharey=True)
    several = False
    for r, zg in enumerate(zgs):
        for c, noise in enumerate(noises):
            ax = axes[r, c]
            panel = df[(df["zero_grad"] == zg) & (df["noise"] == noise)]
            for (opt, lr), cell in panel.groupby(["optimizer", "lr"], sort=False):
                x, y = lrs.index(lr), opts.index(opt)
                symptom, text = _cell_summary(cell)
                several |= len(cell) > 1
                color = SYMPTOM_COLORS[symptom]
                ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=color, edgecolor="white",
                                       lw=1.5, gid=f"{opt}|{lr}"))
                ax.text(x, y, text, ha="center", va="center", fontsize=7, color=_text_color(color))
            ax.set_xlim(-0.5, len(lrs) - 0.5)
            ax.set_ylim(len(opts) - 0.5, -0.5)  # first optimizer on top
            ax.set_xticks(range(len(lrs)), [fmt_lr(v) for v in lrs],
                          rotation=45 if rotate else 0, fontsize=8)
            ax.set_yticks(range(len(opts)), [str(o) for o in opts], fontsize=8)
            ax.tick_params(length=0)
            ax.set_facecolor("#f4f4f4")  # empty cell: no run at this grid point
            for s in ax.spines.values():
                s.set_visible(False)
            ax.set_title(_facet_title(("noise", noise), ("zero_grad", zg)), fontsize=10,
                         y=1.0)
            if r == len(zgs) - 1:
                ax.set_xlabel("learning rate")
            if c == 0:
                ax.set_ylabel("optimizer")
    _suptitle(fig, f"symptom by lr × optimizer — model: {model}", narrow=narrow)
    notes = (["3.2e-4: median final\ntrain loss", "n=3: runs in the cell",
              "2/3: runs sharing\nthe cell's symptom"] if several else ["3.2e-4: final train loss"])
    _legends_right(fig, [
        dict(handles=_symptom_handles(list(df["symptom"])), title="symptom"),
        dict(handles=[Line2D([], [], ls="none", label=t) for t in notes], title="cell text",
             handlelength=0, handletextpad=0)], 1.35, top=0.1 if narrow else 0.65)
    return fig


