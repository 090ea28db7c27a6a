"""Shared pieces of the figures: symptom colours, number formats, facet order, the runs frame's
normalisation, titles, legends, log axes, and ``save``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import LogFormatter

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


def _grid(fig: Figure, nrows: int, ncols: int, left: float, right: float, top: float,
          bottom: float, wgap: float, hgap: float, **kw: Any) -> np.ndarray:
    """Axes on a hand-set grid, margins and gaps in inches (room for tick labels, titles and the
    legends beside it): a layout engine measures every text of the figure once more before the
    draw, ~1/3 of a figure's time. Returns the axes as a 2-D array."""
    w, h = fig.get_size_inches()
    aw = max((w - left - right - (ncols - 1) * wgap) / ncols, 0.5)
    ah = max((h - top - bottom - (nrows - 1) * hgap) / nrows, 0.5)
    spec = dict(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                wspace=wgap / aw, hspace=hgap / ah, **kw.pop("gridspec_kw", {}))
    return fig.subplots(nrows, ncols, squeeze=False, gridspec_kw=spec, **kw)


def _legend_height(leg: dict, fontsize: float = 8, title_fontsize: float = 9) -> float:
    """A legend's height in inches, from its lines of text (it is placed before any draw)."""
    lines = sum(1 + str(h.get_label()).count("\n") for h in leg["handles"])
    return (lines * 1.25 * fontsize + len(leg["handles"]) * 0.5 * fontsize
            + 1.6 * title_fontsize + 0.8 * fontsize) / 72


def _legends_right(fig: Figure, legends: list[dict], width: float, top: float) -> None:
    """Figure legends stacked down a column ``width`` inches wide at the right edge, from
    ``top`` inches below the top; a figure too short for the stack is made taller (its axes
    keep their margins in inches)."""
    w, h = fig.get_size_inches()
    need = top + sum(_legend_height(leg) + 0.15 for leg in legends)
    if need > h and fig.axes:
        gs = fig.axes[0].get_gridspec()
        gs.update(top=1 - (1 - gs.top) * h / need, bottom=gs.bottom * h / need)
        fig.set_size_inches(w, need)
        h = need
    y = top
    for leg in legends:
        fig.legend(loc="upper left", bbox_to_anchor=(1 - width / w, 1 - y / h), fontsize=8,
                   title_fontsize=9, frameon=False, alignment="left", borderaxespad=0, **leg)
        y += _legend_height(leg) + 0.15


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



class _LossTicks(LogFormatter):
    """Log-axis tick labels in fmt_loss's compact form (0.01, 1, 1e3) instead of 10^k / 4x10^0."""

    def _num_to_string(self, x, vmin, vmax):
        return fmt_loss(x)


def _log_y(ax) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_LossTicks())
    ax.yaxis.set_minor_formatter(_LossTicks(labelOnlyBase=False))


DPI = 110


def save(fig: Figure, path) -> Path:
    """Save a Figure as PNG (dpi 110), creating parent folders.

    Args:
        fig: the Figure to write.
        path: the file to write; its suffix is kept but the format is always PNG.

    One draw: ``savefig`` lays a figure with a layout engine out in a first, unrendered draw
    and then draws it again; here the canvas's pixels are written as drawn (the figures' hand-set
    layout leaves no margin to trim). The figure is not cleared after: ``clf`` builds new ticks
    for every axes it resets, and an unreferenced figure is freed anyway.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.set_dpi(DPI)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba())
    image.save(path, format="png", dpi=(DPI, DPI))
    return path
