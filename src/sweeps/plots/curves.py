"""Loss curves per epoch: one Figure per model, optimizer (rows) x zero_grad (columns)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sweeps.plots.style import (_HUGE, _NOISE_STYLES, _PANEL, SYMPTOM_COLORS, _by_model, _facet_title,
                                _grid, _histories_by_run, _legends_right, _levels, _log_y,
                                _message_figure, _normalise, _sort_key, _suptitle, _symptom_handles,
                                fmt_lr)

_LEGENDS = 1.55  # inches at the right for the legends


def _curve(epochs: np.ndarray, values: np.ndarray, floor: float, ceil: float):
    """Clip one curve for a log axis. Returns (x, y, blowup_epoch or None): an epoch with no
    value (NaN: a validation logged every k epochs) is left out, so the line joins the logged
    points; huge values sit on the ceiling, and a trailing non-finite block becomes one last
    point on the ceiling at the epoch the run went non-finite."""
    bad = ~np.isfinite(values) | (np.abs(values) >= _HUGE)
    good_idx = np.flatnonzero(~bad)
    end = good_idx[-1] + 1 if len(good_idx) else 0
    x, y = epochs[:end].astype(float), values[:end].astype(float)
    y = np.where(np.isinf(y) | (y >= _HUGE), ceil, y)
    y = np.clip(y, floor, ceil)
    x, y = x[~np.isnan(y)], y[~np.isnan(y)]
    blowup = None
    if end < len(values):
        blowup = float(epochs[end])
        x, y = np.r_[x, blowup], np.r_[y, ceil]
    return x, y, blowup


def _log_limits(curves: list[np.ndarray]) -> tuple[float, float]:
    """(floor, ceiling) for a shared log axis: the ceiling stays within 100x the largest initial
    loss (diagnose's blow-up ratio) so one diverging run cannot squash every other curve."""
    finite = [c[np.isfinite(c) & (np.abs(c) < _HUGE)] for c in curves]
    allv = np.concatenate(finite) if finite else np.array([])
    pos = allv[allv > 0]
    if len(pos) == 0:
        return 1e-3, 1.0
    starts = [f[0] for f in finite if len(f) and f[0] > 0]
    ceil = min(float(pos.max()), 100 * max(starts)) if starts else float(pos.max())
    floor = max(float(pos.min()), ceil * 1e-12)
    return floor, max(ceil, floor * 10)


def _spread(ys: list[float], gap: float) -> list[float]:
    """Push label positions (axes fraction) apart by at least gap, keeping them in [0, 1]."""
    order = np.argsort(ys)
    out = np.array(ys, dtype=float)
    placed = out[order]
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    overflow = placed[-1] - 1.0 if len(placed) else 0
    if overflow > 0:
        placed -= overflow
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - gap)
    out[order] = placed
    return list(out)


def loss_curves(runs: pd.DataFrame, histories: pd.DataFrame,
                metric: str = "train_loss") -> dict[str, Figure]:
    """Loss curves per epoch, faceted optimizer (rows) x zero_grad (columns), one Figure per model.

    Args:
        runs: one row per run (run_id, symptom, optimizer, lr, noise, zero_grad, model, ...).
        histories: long frame (run_id, epoch, train_loss, val_loss).
        metric: the history column to draw ("train_loss" or "val_loss").

    Each line is one run, coloured by its symptom, styled by its noise level and labelled with its
    lr at the right edge; the y axis is log. A run that went non-finite climbs to the top of the
    axis and ends in an "x". Returns {model: Figure} ({"all": ...} when there is no model column).
    """
    df = _normalise(runs)
    hist = _histories_by_run(histories)
    if len(df) == 0:
        return {"all": _message_figure("no runs", f"{metric} per epoch")}
    out = {}
    for model, sub in _by_model(df).items():
        out[model] = _loss_figure(sub, hist, metric, model)
    return out


# Runs drawn per grid point (optimizer, zero_grad, lr, noise) in the loss curves: seeds beyond
# these repeat a line already there and would only bury it (7,200 runs = 7,200 lines); every run
# is in labels.csv and the symptom maps count them all.
MAX_REPEATS = 3


def _drawn(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby(["optimizer", "zero_grad", "lr", "noise"], sort=False, dropna=False).head(MAX_REPEATS)


def _loss_figure(all_runs: pd.DataFrame, hist: dict, metric: str, model: str) -> Figure:
    df = _drawn(all_runs)
    hidden = len(all_runs) - len(df)
    opts, zgs, noises = _levels(df, "optimizer"), _levels(df, "zero_grad"), _levels(df, "noise")
    style = {n: _NOISE_STYLES[i % len(_NOISE_STYLES)] for i, n in enumerate(noises)}
    series = {}
    for row in df.itertuples(index=False):
        h = hist.get(row.run_id)
        if h is not None and metric in h and len(h):
            series[row.run_id] = (h["epoch"].to_numpy(float),
                                  pd.to_numeric(h[metric], errors="coerce").to_numpy(float))
    floor, ceil = _log_limits([v for _, v in series.values()])
    top, bottom = ceil * 2.5, floor / 2

    blowups = lr_labels = 0
    narrow = len(zgs) == 1
    fig = Figure(figsize=(_PANEL[0] * len(zgs) + 1.7, _PANEL[1] * len(opts) + 0.5))
    # room for: log tick labels and the y label (left), lr labels right of each panel (gaps),
    # the suptitle and panel titles (top), tick labels and the x label (bottom), the legends
    axes = _grid(fig, len(opts), len(zgs), left=0.8, right=0.45 + _LEGENDS,
                 top=0.9 if narrow else 0.65, bottom=0.55, wgap=0.5, hgap=0.35)
    first = min((x.min() for x, _ in series.values() if len(x)), default=0.0)
    last = max(max((x.max() for x, _ in series.values() if len(x)), default=0.0), first + 1)
    pad = 0.03 * (last - first)
    for i, opt in enumerate(opts):
        for j, zg in enumerate(zgs):
            ax = axes[i, j]
            _log_y(ax)
            # the same limits everywhere, set per panel: shared axes cost a tick layout of
            # every sibling each time one of them places its labels
            ax.set_xlim(first - pad, last + pad)  # every epoch recorded, also past a blow-up
            ax.set_ylim(bottom, top)
            ax.tick_params(labelbottom=i == len(opts) - 1, labelleft=j == 0)
            ax.set_title(_facet_title(("", opt), ("zero_grad", zg)), fontsize=10, y=1.0)
            ax.grid(True, which="major", color="#e6e6e6", lw=0.6)
            cell = df[(df["optimizer"] == opt) & (df["zero_grad"] == zg)]
            cell = cell.iloc[sorted(range(len(cell)), key=lambda k: _sort_key(cell["lr"].iloc[k]))]
            labels: list[tuple[float, str, str]] = []
            lines, ids, colors, styles, marks = [], [], [], [], []
            for row in cell.itertuples(index=False):
                if row.run_id not in series:
                    continue
                x, y, blowup = _curve(*series[row.run_id], floor, ceil)
                color = SYMPTOM_COLORS[row.symptom]
                lines.append(np.column_stack([x, y]))
                ids.append(row.run_id)
                colors.append(color)
                styles.append(style[row.noise])
                if blowup is not None:
                    marks.append((blowup, color))
                fin = y[np.isfinite(y)]
                if len(fin) and row.lr != "-":  # where the line ends, as a fraction of the axis
                    frac = math.log(fin[-1] / bottom) / math.log(top / bottom)
                    labels.append((frac, fmt_lr(row.lr), color))
            if lines:  # one artist for the panel's runs: ~70x cheaper to draw than a Line2D each
                curves = LineCollection(lines, colors=colors, linestyles=styles, linewidths=1.4,
                                        joinstyle="round", zorder=2, gid="runs")
                curves.set_urls(ids)  # which run each line is
                ax.add_collection(curves, autolim=False)
            if marks:
                blowups += len(marks)
                ax.scatter([m[0] for m in marks], [ceil] * len(marks), marker="x", s=49,
                           linewidths=2, c=[m[1] for m in marks], zorder=2, gid="blowups")
            _label_lrs(ax, labels)
            lr_labels += len(labels)
            if not len(cell):
                ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", color="#888888")
            if i == len(opts) - 1:
                ax.set_xlabel("epoch")
            if j == 0:
                ax.set_ylabel("loss (log)")  # MSE for this tool's runs; another script's own loss

    what = {"train_loss": "train loss", "val_loss": "validation loss"}.get(metric, metric)
    more = f" ({hidden} more runs of the same grid points not drawn)" if hidden else ""
    _suptitle(fig, f"{what} per epoch — model: {model}{more}", narrow=narrow)
    legends = [dict(handles=_symptom_handles(list(df["symptom"])), title="symptom (colour)")]
    if len(noises) > 1:
        legends.append(dict(title="noise (line style)", handles=[
            Line2D([], [], color="#444444", ls=style[n], label=str(n)) for n in noises]))
    marks = [Line2D([], [], color="#444444", marker="x", ls="none", mew=2,
                    label="went NaN/inf\n(drawn at the top)")] if blowups else []
    marks += [Line2D([], [], ls="none", label="3e-2 at right: lr")] if lr_labels else []
    if marks:
        legends.append(dict(title="marks", handles=marks))
    _legends_right(fig, legends, _LEGENDS, top=0.1 if narrow else 0.65)  # narrow: beside the title
    return fig


def _label_lrs(ax, labels: list[tuple[float, str, str]]) -> None:
    """Write each line's lr at the right edge, pushed apart where lines end close together,
    with a thin leader back to where the line ends; one label for equal lrs ending together."""
    merged: list[list] = []
    for frac, text, color in labels:
        same = [m for m in merged if m[1] == text and abs(m[0] - frac) < 0.06]
        if same:
            same[0][2] = same[0][2] if same[0][2] == color else "#333333"
        else:
            merged.append([frac, text, color])
    ends = [min(max(m[0], 0.0), 1.0) for m in merged]
    ys = _spread(ends, gap=0.075)
    for y, (_, text, color) in zip(ys, merged):
        ax.text(1.06, y, text, transform=ax.transAxes, fontsize=6.5, va="center", ha="left",
                color=color, clip_on=False)
    # thin leaders from each label back to where its line ends (plain segments: an annotation's
    # arrow clips itself against the text box, the costliest part of drawing these figures)
    leaders = LineCollection([[(1.055, y), (1.003, end)] for y, end in zip(ys, ends)],
                             colors=[m[2] for m in merged], linewidths=0.5,
                             transform=ax.transAxes, clip_on=False, gid="lr-leaders")
    leaders.set_in_layout(False)
    ax.add_collection(leaders, autolim=False)
