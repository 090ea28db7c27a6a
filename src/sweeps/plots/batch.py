"""Write the figures of an analysis (loss curves and symptom map per model, the overfitting
panels, the fitted line of one linear run) as PNGs, several at a time: on Linux the figures are shared out among forked
copies of this process (one per CPU, at most 4), each drawing its share from the frames already
in memory; elsewhere, or when a copy fails, they are drawn here one after another."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Optional

import pandas as pd

from sweeps.plots.curves import loss_curves
from sweeps.plots.fitted import fitted_line, fitted_line_gif
from sweeps.plots.maps import symptom_map
from sweeps.plots.overfit import overfitting_curves
from sweeps.plots.style import _normalise, save

MAX_PROCESSES = 4


def _gif(line: dict, path: Path) -> None:
    fitted_line_gif(line["x"], line["y"], line["w"], line["b"], line["train_loss"], path)


def _jobs(runs: pd.DataFrame, histories: pd.DataFrame, out: Path, line: Optional[dict] = None,
          gif: bool = False) -> list[tuple[str, Callable, float]]:
    """(file name, function returning its Figure or None, rough cost in panel-draws); the
    fitted line's picture (and GIF: written by its job) when ``line`` holds its arrays."""
    df = _normalise(runs)
    models = sorted(set(df["model"]), key=str) if len(df) else ["-"]
    jobs: list[tuple[str, Callable, float]] = []
    for m in models:  # one figure per model, each from that model's runs only
        sub = runs[df["model"].to_numpy() == m] if len(df) else runs
        mine = df[df["model"] == m]
        name = "all" if m == "-" else str(m)
        panels = max(1, mine["optimizer"].nunique() * mine["zero_grad"].nunique())
        jobs.append((f"loss_curves_{name}.png",
                     lambda s=sub, n=name: loss_curves(s, histories)[n], 1.0 * panels))
        panels = max(1, mine["noise"].nunique() * mine["zero_grad"].nunique())
        jobs.append((f"symptom_map_{name}.png", lambda s=sub, n=name: symptom_map(s)[n], 0.8 * panels))
    over = min(12, int((df["symptom"] == "overfitting").sum())) if len(df) else 0
    jobs.append(("overfitting.png", lambda: overfitting_curves(runs, histories), 1.0 * over))
    if line is not None:
        jobs.append(("fitted_line.png", lambda: fitted_line(**line), 3.0))
        if gif:
            jobs.append(("fitted_line.gif", lambda: _gif(line, out / "fitted_line.gif"), 8.0))
    return jobs


def _share(jobs: list, n: int) -> list[list]:
    """Jobs split among n processes, the costliest first to the least loaded."""
    loads, shares = [0.0] * n, [[] for _ in range(n)]
    for job in sorted(jobs, key=lambda j: -j[2]):
        k = loads.index(min(loads))
        shares[k].append(job)
        loads[k] += job[2]
    return shares


def _draw(jobs: list, out: Path) -> None:
    for name, make, _ in jobs:
        fig = make()
        if fig is not None:
            save(fig, out / name)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def write_figures(runs: pd.DataFrame, histories: pd.DataFrame, out_dir,
                  processes: Optional[int] = None, line: Optional[dict] = None,
                  gif: bool = False) -> list[Path]:
    """Draw and save the comparison figures into ``out_dir``; returns the files written.

    Args:
        runs: one row per run (run_id, name, symptom, facet columns, final losses).
        histories: long frame (run_id, epoch, train_loss, val_loss).
        out_dir: folder for the PNGs (created).
        processes: how many processes draw (default: one per CPU, at most 4; 1 draws here).
        line: the arguments of ``fitted_line`` for one linear run (x, y, w, b, train_loss,
            x_val, y_val), to draw its picture too; ``gif``: and its animation.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(runs, histories, out, line, gif)
    for name, _, _ in jobs:  # a figure this analysis does not draw (no overfitting run) must not stay
        (out / name).unlink(missing_ok=True)
    n = min(len(jobs), processes or min(_cpus(), MAX_PROCESSES))
    if n <= 1 or not sys.platform.startswith("linux"):  # fork is only dependable on Linux
        _draw(jobs, out)
    else:
        shares = _share(jobs, n)
        children = {}
        for k in range(1, n):
            pid = os.fork()
            if pid == 0:  # a copy of this process: draw its share and leave without cleanup
                code = 1
                try:
                    _draw(shares[k], out)
                    code = 0
                finally:
                    os._exit(code)
            children[pid] = k
        _draw(shares[0], out)
        for pid, k in children.items():
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:  # draw that share here, raising its error
                _draw(shares[k], out)
    return [out / name for name, _, _ in jobs if (out / name).is_file()]
