"""Data in, matplotlib Figures out: loss curves, symptom maps, overfitting curves and the
explainer's fitted-line picture, from the runs/histories frames analysis builds from the store.
Object-oriented matplotlib only (no pyplot, no global state); only ``save``/the GIF write files."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import LogFormatter
from PIL import Image

# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies).
SYMPTOM_COLORS: dict[str, str] = {
    "healthy": "#009E73",  # bluish green
    "diverged": "#D55E00",  # vermillion
    "stalled": "#999999",  # grey
    "oscillating": "#CC79A7",  # reddish purple
    "overfitting": "#0072B2",  # blue
    "unlabeled": "#000000",  # no diagnosis: black stands out from every symptom
}
_SEVERITY = ("diverged", "oscillating", "overfitting", "stalled", "healthy", "unlabeled")
_OPTIMIZER_ORDER = ("sgd", "momentum", "adam", "rmsprop")
_FACETS = ("optimizer", "lr", "noise", "zero_grad", "model")
_NOISE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
_HUGE = 1e300  # a "finite" loss this large is an overflow the loop stored, not a measurement
_PANEL = (3.0, 2.5)  # inches per facet


def symptom_of(value: Any) -> str:
    """The SYMPTOM_COLORS key for a run's symptom tag ('unlabeled' for empty, NaN or unknown)."""
    s = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    s = s.strip().lower()
    return s if s in SYMPTOM_COLORS else "unlabeled"


def fmt_loss(v: Any) -> str:
    """A loss in compact form: 3.2e-4, 0.12, 1.5e3, 'nan', 'inf'."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v) or abs(v) >= _HUGE:
        return "inf" if v > 0 else "-inf"
    if v != 0 and (abs(v) < 0.01 or abs(v) >= 1000):
        m, e = f"{v:.1e}".split("e")
        return f"{m.removesuffix('.0')}e{int(e)}"
    return f"{v:.2g}" if abs(v) < 1 else f"{v:.3g}"


def fmt_lr(v: Any) -> str:
    """A learning rate as a log-style label: 1e-3, 3e-2, 2.5e-1 ('-' when unknown)."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(v):
        return "-"
    if v <= 0:
        return f"{v:g}"
    e = math.floor(math.log10(v) + 1e-12)
    m = float(f"{v / 10 ** e:.2g}")
    return f"{m:g}e{e}"


def _sort_key(v: Any) -> tuple:
    """Facet order: True before False (the canonical loop first), numbers ascending (also as
    MLflow's strings), known optimizers in their usual order, then other names, '-' last."""
    if isinstance(v, (bool, np.bool_)) or str(v).lower() in ("true", "false"):
        return (0, -int(str(v).lower() == "true"), "")
    try:
        return (1, float(v), "")
    except (TypeError, ValueError):
        s = str(v)
        order = _OPTIMIZER_ORDER.index(s) if s in _OPTIMIZER_ORDER else len(_OPTIMIZER_ORDER)
        return (2 + (s == "-"), order, s)


def _normalise(runs: pd.DataFrame) -> pd.DataFrame:
    """A copy with every facet column present (missing or NaN -> '-') and a clean symptom."""
    df = runs.copy() if runs is not None else pd.DataFrame()
    for col in _FACETS:
        if col not in df:
            df[col] = "-"
        df[col] = df[col].astype(object).where(df[col].notna(), "-")
    for col in ("run_id", "name"):
        if col not in df:
            df[col] = [str(i) for i in range(len(df))]
    df["symptom"] = [symptom_of(s) for s in df.get("symptom", pd.Series([None] * len(df)))]
    for col in ("final_train_loss", "final_val_loss"):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
    df["run_id"] = df["run_id"].astype(str)
    return df.reset_index(drop=True)


def _levels(df: pd.DataFrame, col: str) -> list:
    return sorted(pd.unique(df[col]), key=_sort_key)


def _by_model(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {("all" if m == "-" else str(m)): df[df["model"] == m] for m in _levels(df, "model")}


def _histories_by_run(histories: Optional[pd.DataFrame]) -> dict[str, pd.DataFrame]:
    if histories is None or len(histories) == 0 or "run_id" not in histories:
        return {}
    h = histories.assign(run_id=histories["run_id"].astype(str))
    return {rid: g.sort_values("epoch") for rid, g in h.groupby("run_id", sort=False)}


def _message_figure(text: str, title: str = "") -> Figure:
    fig = Figure(figsize=_PANEL, layout="constrained")
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="#555555")
    ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def _facet_title(*pairs: tuple[str, Any]) -> str:
    """'adam · zero_grad=True' from (name, value) pairs, leaving out unknown ('-') values."""
    return " · ".join(f"{k}={v}" if k else str(v) for k, v in pairs if v != "-")


def _suptitle(fig: Figure, text: str, narrow: bool) -> None:
    """A one-column figure has its legends beside the title: wrap it and keep it left."""
    if narrow:
        fig.suptitle(text.replace(" — ", "\n"), fontsize=11, x=0.02, ha="left")
    else:
        fig.suptitle(text, fontsize=12)


def _text_color(bg: str) -> str:
    r, g, b = to_rgb(bg)
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _symptom_handles(present: Sequence[str]) -> list[Patch]:
    shown = [s for s in SYMPTOM_COLORS if s != "unlabeled" or s in present]
    return [Patch(facecolor=SYMPTOM_COLORS[s], label=s) for s in shown]


def _curve(epochs: np.ndarray, values: np.ndarray, floor: float, ceil: float):
    """Clip one curve for a log axis. Returns (x, y, blowup_epoch or None): interior NaNs are
    gaps, huge values sit on the ceiling, and a trailing non-finite block becomes one last point
    on the ceiling at the epoch the run went non-finite."""
    bad = ~np.isfinite(values) | (np.abs(values) >= _HUGE)
    good_idx = np.flatnonzero(~bad)
    end = good_idx[-1] + 1 if len(good_idx) else 0
    x, y = epochs[:end].astype(float), values[:end].astype(float)
    y = np.where(np.isinf(y) | (y >= _HUGE), ceil, y)
    y = np.clip(y, floor, ceil)  # NaN stays NaN: a gap
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


class _LossTicks(LogFormatter):
    """Log-axis tick labels in fmt_loss's compact form (0.01, 1, 1e3) instead of 10^k / 4x10^0."""

    def _num_to_string(self, x, vmin, vmax):
        return fmt_loss(x)


def _log_y(ax) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_LossTicks())
    ax.yaxis.set_minor_formatter(_LossTicks(labelOnlyBase=False))


def _run_title(row) -> str:
    """'adam · lr=3e-2 · noise=1.0 · zero_grad=False', from the facet columns a run has."""
    parts = [str(row["optimizer"])] if row["optimizer"] != "-" else []
    parts += [f"lr={fmt_lr(row['lr'])}"] if row["lr"] != "-" else []
    rest = [f"{c}={row[c]}" for c in ("noise", "zero_grad") if row[c] != "-"]
    if len(" · ".join(parts + rest)) > 36:  # wider than a panel at this font size
        return " · ".join(parts) + "\n" + " · ".join(rest)
    return " · ".join(parts + rest) or str(row["name"])[:40]


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
    fig = Figure(figsize=(_PANEL[0] * len(zgs) + 1.7, _PANEL[1] * len(opts) + 0.5),
                 layout="constrained")
    axes = fig.subplots(len(opts), len(zgs), squeeze=False, sharex=True, sharey=True)
    first = min((x.min() for x, _ in series.values() if len(x)), default=0.0)
    last = max(max((x.max() for x, _ in series.values() if len(x)), default=0.0), first + 1)
    pad = 0.03 * (last - first)
    axes[0, 0].set_xlim(first - pad, last + pad)  # every epoch recorded, also past a blow-up
    for i, opt in enumerate(opts):
        for j, zg in enumerate(zgs):
            ax = axes[i, j]
            _log_y(ax)
            ax.set_ylim(bottom, top)
            ax.set_title(_facet_title(("", opt), ("zero_grad", zg)), fontsize=10)
            ax.grid(True, which="major", color="#e6e6e6", lw=0.6)
            cell = df[(df["optimizer"] == opt) & (df["zero_grad"] == zg)]
            cell = cell.iloc[sorted(range(len(cell)), key=lambda k: _sort_key(cell["lr"].iloc[k]))]
            labels: list[tuple[float, str, str]] = []
            for row in cell.itertuples(index=False):
                if row.run_id not in series:
                    continue
                x, y, blowup = _curve(*series[row.run_id], floor, ceil)
                color = SYMPTOM_COLORS[row.symptom]
                ax.plot(x, y, color=color, ls=style[row.noise], lw=1.4, gid=row.run_id)
                if blowup is not None:
                    blowups += 1
                    ax.plot([blowup], [ceil], marker="x", ms=7, mew=2, color=color, ls="none")
                fin = y[np.isfinite(y)]
                if len(fin) and row.lr != "-":  # where the line ends, as a fraction of the axis
                    frac = math.log(fin[-1] / bottom) / math.log(top / bottom)
                    labels.append((frac, fmt_lr(row.lr), color))
            _label_lrs(ax, labels)
            lr_labels += len(labels)
            if not len(cell):
                ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", color="#888888")
            if i == len(opts) - 1:
                ax.set_xlabel("epoch")
            if j == 0:
                ax.set_ylabel("MSE (log)")

    what = {"train_loss": "train loss", "val_loss": "validation loss"}.get(metric, metric)
    more = f" ({hidden} more runs of the same grid points not drawn)" if hidden else ""
    _suptitle(fig, f"{what} per epoch — model: {model}{more}", narrow=len(zgs) == 1)
    legends = [dict(handles=_symptom_handles(list(df["symptom"])), title="symptom (colour)")]
    if len(noises) > 1:
        legends.append(dict(title="noise (line style)", handles=[
            Line2D([], [], color="#444444", ls=style[n], label=str(n)) for n in noises]))
    marks = [Line2D([], [], color="#444444", marker="x", ls="none", mew=2,
                    label="went NaN/inf\n(drawn at the top)")] if blowups else []
    marks += [Line2D([], [], ls="none", label="3e-2 at right: lr")] if lr_labels else []
    if marks:
        legends.append(dict(title="marks", handles=marks))
    locs = {1: ("upper",), 2: ("upper", "lower"), 3: ("upper", "center", "lower")}
    for leg, loc in zip(legends, locs[len(legends)]):
        fig.add_artist(fig.legend(loc=f"outside right {loc}", fontsize=8, title_fontsize=9,
                                  frameon=False, alignment="left", **leg))
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
    for y, end, (_, text, color) in zip(_spread(ends, gap=0.075), ends, merged):
        ax.annotate(text, xy=(1.0, end), xycoords="axes fraction", xytext=(1.06, y),
                    textcoords="axes fraction", fontsize=6.5, va="center", ha="left",
                    color=color, annotation_clip=False,
                    arrowprops=dict(arrowstyle="-", lw=0.5, color=color, shrinkA=0, shrinkB=1))


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
    fig = Figure(figsize=(pw * len(noises) + 1.5, ph * len(zgs) + 0.6), layout="constrained")
    axes = fig.subplots(len(zgs), len(noises), squeeze=False, sharex=True, sharey=True)
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
                          rotation=45 if len(lrs) > 5 else 0, fontsize=8)
            ax.set_yticks(range(len(opts)), [str(o) for o in opts], fontsize=8)
            ax.tick_params(length=0)
            ax.set_facecolor("#f4f4f4")  # empty cell: no run at this grid point
            for s in ax.spines.values():
                s.set_visible(False)
            ax.set_title(_facet_title(("noise", noise), ("zero_grad", zg)), fontsize=10)
            if r == len(zgs) - 1:
                ax.set_xlabel("learning rate")
            if c == 0:
                ax.set_ylabel("optimizer")
    _suptitle(fig, f"symptom by lr × optimizer — model: {model}", narrow=len(noises) == 1)
    fig.add_artist(fig.legend(handles=_symptom_handles(list(df["symptom"])), title="symptom",
                              loc="outside right upper", fontsize=8, title_fontsize=9,
                              frameon=False, alignment="left"))
    notes = (["3.2e-4: median final\ntrain MSE", "n=3: runs in the cell",
              "2/3: runs sharing\nthe cell's symptom"] if several else ["3.2e-4: final train MSE"])
    fig.legend(handles=[Line2D([], [], ls="none", label=t) for t in notes], title="cell text",
               loc="outside right lower", fontsize=8, title_fontsize=9, frameon=False,
               alignment="left", handlelength=0, handletextpad=0)
    return fig


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
    fig = Figure(figsize=(_PANEL[0] * ncols, _PANEL[1] * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    color = SYMPTOM_COLORS["overfitting"]
    for k, ax in enumerate(axes.flat):
        if k >= len(shown):
            ax.set_axis_off()
            continue
        row = shown.iloc[k]
        ax.set_title(_run_title(row), fontsize=8.5)
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
            ax.plot(ep, v, color=color, ls=ls, lw=1.4, label=label)
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
            ax.set_ylabel("MSE (log)")
    more = f" (first {len(shown)} of {len(df)})" if len(df) > len(shown) else ""
    fig.suptitle(f"overfitting runs: train (solid) vs validation (dashed){more}", fontsize=11)
    return fig


def _pick_epochs(n: int, k: int = 7) -> list[int]:
    """About k epochs spread on a log-ish scale: 0, 1, 3, 10, 30, ..., and the last."""
    if n <= 0:
        return []
    picks = [e for e in (0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000) if e < n - 1] + [n - 1]
    if len(picks) > k:  # keep the first and last, thin the middle evenly
        idx = np.unique(np.round(np.linspace(0, len(picks) - 1, k)).astype(int))
        picks = [picks[i] for i in idx]
    return sorted(set(picks))


def _linear_arrays(x, y, w, b, train_loss):
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    w, b = np.asarray(w, float).ravel(), np.asarray(b, float).ravel()
    n = min(len(w), len(b))
    return x, y, w[:n], b[:n], np.asarray(train_loss, float).ravel()


def _draw_data(ax, x, y, x_val=None, y_val=None) -> tuple[np.ndarray, tuple[float, float]]:
    """Scatter the points; return the x grid for lines and y limits that ignore wild lines."""
    ax.scatter(x, y, s=14, color="#7f7f7f", alpha=0.7, label="train data", zorder=1)
    ys = [y]
    if x_val is not None and y_val is not None:
        xv, yv = np.asarray(x_val, float).ravel(), np.asarray(y_val, float).ravel()
        ax.scatter(xv, yv, s=16, facecolors="none", edgecolors="#7f7f7f", label="val data")
        x, ys = np.r_[x, xv], ys + [yv]
    ally = np.concatenate(ys)
    ally = ally[np.isfinite(ally)]
    lo, hi = (ally.min(), ally.max()) if len(ally) else (-1.0, 1.0)
    pad = 0.25 * (hi - lo) or 1.0
    xf = x[np.isfinite(x)]
    xlo, xhi = (xf.min(), xf.max()) if len(xf) else (-1.0, 1.0)
    xpad = 0.05 * (xhi - xlo) or 1.0
    ax.set_xlim(xlo - xpad, xhi + xpad)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return np.array([xlo - xpad, xhi + xpad]), (lo - pad, hi + pad)


def _draw_loss(ax, loss: np.ndarray) -> None:
    ep = np.arange(len(loss))
    v = np.where(np.isfinite(loss) & (loss > 0) & (loss < _HUGE), loss, np.nan)
    ax.plot(ep, v, color="#333333", lw=1.4)
    if len(v) and not np.isnan(v).all():
        _log_y(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (log)")
    ax.set_title("loss vs. epoch", fontsize=10)


def fitted_line(x, y, w, b, train_loss, epochs: Optional[Sequence[int]] = None,
                x_val=None, y_val=None) -> Figure:
    """The explainer's picture for one linear run: the fitted line closing in on the data.

    Args:
        x, y: the training data (1-D array-likes).
        w, b: the weight and bias per epoch (w[e], b[e] as recorded at epoch e).
        train_loss: the training loss per epoch.
        epochs: which epochs' lines to draw; default ~7 on a log-ish scale (0, 1, 3, 10, 30, ...,
            last).
        x_val, y_val: optional validation points, drawn hollow.

    Left: the points and the line y = w[e]·x + b[e] for each chosen epoch, light to dark. Right:
    the loss curve (log y) with a marker of the same colour at each chosen epoch.
    """
    x, y, w, b, loss = _linear_arrays(x, y, w, b, train_loss)
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    ax, lax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
    grid, ylim = _draw_data(ax, x, y, x_val, y_val)
    _draw_loss(lax, loss)
    chosen = [int(e) for e in (_pick_epochs(len(w)) if epochs is None else epochs)
              if 0 <= int(e) < len(w)]
    colors = colormaps["Blues"](np.linspace(0.35, 1.0, max(len(chosen), 1)))
    for e, c in zip(chosen, colors):
        if np.isfinite(w[e]) and np.isfinite(b[e]):
            ax.plot(grid, w[e] * grid + b[e], color=c, lw=1.8, label=f"epoch {e}")
        if e < len(loss) and np.isfinite(loss[e]) and 0 < loss[e] < _HUGE:
            lax.plot([e], [loss[e]], "o", color=c, ms=6, mec="#333333", mew=0.5)
    ax.set_ylim(*ylim)  # a diverging line whips off-axis instead of squashing the points
    ax.set_title("data & fitted line y = w·x + b", fontsize=10)
    ax.legend(fontsize=7, loc="best", frameon=False)
    if len(w):
        last = len(w) - 1
        fig.suptitle(f"gradient descent on y = w·x + b: at epoch {last} w={w[last]:.3g}, "
                     f"b={b[last]:.3g}, loss={fmt_loss(loss[-1]) if len(loss) else 'nan'}",
                     fontsize=11)
    return fig


def fitted_line_gif(x, y, w, b, train_loss, path, frames: int = 40, fps: int = 10) -> Path:
    """Write an animated GIF of the fitted line moving toward the data, epoch by epoch.

    Args:
        x, y, w, b, train_loss: as for ``fitted_line``.
        path: the .gif to write (parent folders are created).
        frames: at most this many frames, denser early where the line moves most.
        fps: frames per second.

    Each frame shows the points, the current line (with fading earlier ones) and the loss curve
    with a marker at the current epoch. Returns the path written.
    """
    x, y, w, b, loss = _linear_arrays(x, y, w, b, train_loss)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(8.0, 3.5), dpi=80, layout="constrained")
    ax, lax = fig.subplots(1, 2)
    grid, ylim = _draw_data(ax, x, y)
    ax.set_ylim(*ylim)
    ax.set_title("data & fitted line y = w·x + b", fontsize=10)
    _draw_loss(lax, loss)
    n = len(w)
    # square-spaced frame indices: more frames early, where the line moves fastest
    idx = np.unique(np.round(np.linspace(0, math.sqrt(max(n - 1, 0)), max(frames, 1)) ** 2))
    trail = ax.plot([], [], color="#9ecae1", lw=1, alpha=0.7, animated=True)[0]
    line = ax.plot([], [], color="#08519c", lw=2.2, animated=True)[0]
    dot = lax.plot([], [], "o", color="#08519c", ms=7, animated=True)[0]
    label = fig.suptitle(" ", fontsize=11, animated=True)
    # Blitting: draw the static parts once, then only the moving artists per frame (a full
    # redraw per frame, as PillowWriter.grab_frame does, costs ~0.1 s each).
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    fig.set_layout_engine(None)  # the layout is fixed now
    background = canvas.copy_from_bbox(fig.bbox)
    images, past = [], []  # past: the last few lines, drawn faintly as a trail
    for e in (idx.astype(int) if n else [0]):
        canvas.restore_region(background)
        if n and np.isfinite(w[e]) and np.isfinite(b[e]):
            trail.set_data(np.tile(np.r_[grid, np.nan], len(past)),
                           np.concatenate(past) if past else [])
            line.set_data(grid, w[e] * grid + b[e])
            past = (past + [np.r_[w[e] * grid + b[e], np.nan]])[-6:]
        le = loss[e] if e < len(loss) else np.nan
        dot.set_data([e], [le] if np.isfinite(le) and 0 < le < _HUGE else [np.nan])
        if n:
            label.set_text(f"epoch {e}:  w = {w[e]:.3g},  b = {b[e]:.3g},  loss = {fmt_loss(le)}")
        for artist in (trail, line, dot, label):
            fig.draw_artist(artist)
        rgba = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba())
        images.append(rgba.convert("RGB").quantize(64, method=Image.Quantize.FASTOCTREE))
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0)
    fig.clf()
    return path


def save(fig: Figure, path) -> Path:
    """Save a Figure as PNG (dpi 110, tight bounding box), creating parent folders, then clear it.

    Args:
        fig: the Figure to write.
        path: the file to write; its suffix is kept but the format is always PNG.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", format="png")
    fig.clf()
    return path
