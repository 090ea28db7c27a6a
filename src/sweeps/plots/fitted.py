"""The explainer's picture for one linear run: the fitted line y = w·x + b closing in on the
data as the loss falls, as a PNG and as an animated GIF."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sweeps.plots.style import _HUGE, _grid, _log_y, fmt_loss


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
    ax.set_title("loss vs. epoch", fontsize=10, y=1.0)


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
    fig = Figure(figsize=(9.0, 3.6))
    ax, lax = _grid(fig, 1, 2, left=0.75, right=0.15, top=0.65, bottom=0.5, wgap=0.85,
                    hgap=0, gridspec_kw={"width_ratios": [1.15, 1]})[0]
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
    ax.set_title("data & fitted line y = w·x + b", fontsize=10, y=1.0)
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
    from PIL import Image  # only the worked example's picture is animated

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
