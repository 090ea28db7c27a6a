"""Write the comparison figures of an analysis (loss curves and symptom map per model, the
overfitting panels) as PNGs, several at a time: on Linux the figures are shared out among forked
copies of this process (one per CPU, at most 4), each drawing its share from the frames already
in memory; elsewhere, or when a copy fails, they are drawn here one after another."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Optional

import pandas as pd

from sweeps.plots.curves import loss_curves
from sweeps.plots.maps import symptom_map
from sweeps.plots.overfit import overfitting_curves
from sweeps.plots.style import _normalise, save

MAX_PROCESSES = 4


def _jobs(runs: pd.DataFrame, histories: pd.DataFrame) -> list[tuple[str, Callable]]:
    """(file name, function returning its Figure or None), the costliest first."""
    models = sorted(set(_normalise(runs)["model"]), key=str) if len(runs) else ["-"]
    jobs: list[tuple[str, Callable]] = []
    for m in models:  # one figure per model, each from that model's runs only
        sub = runs[runs["model"] == m] if "model" in runs and m != "-" else runs
        name = "all" if m == "-" else str(m)
        jobs.append((f"loss_curves_{name}.png", lambda s=sub, n=name: loss_curves(s, histories)[n]))
    jobs.append(("overfitting.png", lambda: overfitting_curves(runs, histories)))
    for m in models:
        sub = runs[runs["model"] == m] if "model" in runs and m != "-" else runs
        name = "all" if m == "-" else str(m)
        jobs.append((f"symptom_map_{name}.png", lambda s=sub, n=name: symptom_map(s)[n]))
    return jobs


def _draw(jobs: list[tuple[str, Callable]], out: Path) -> None:
    for name, make in jobs:
        fig = make()
        if fig is not None:
            save(fig, out / name)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def write_figures(runs: pd.DataFrame, histories: pd.DataFrame, out_dir,
                  processes: Optional[int] = None) -> list[Path]:
    """Draw and save the comparison figures into ``out_dir``; returns the files written.

    Args:
        runs: one row per run (run_id, name, symptom, facet columns, final losses).
        histories: long frame (run_id, epoch, train_loss, val_loss).
        out_dir: folder for the PNGs (created).
        processes: how many processes draw (default: one per CPU, at most 4; 1 draws here).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(runs, histories)
    for name, _ in jobs:  # a figure this analysis does not draw (no overfitting run) must not stay
        (out / name).unlink(missing_ok=True)
    n = min(len(jobs), processes or min(_cpus(), MAX_PROCESSES))
    if n <= 1 or not sys.platform.startswith("linux"):  # fork is only dependable on Linux
        _draw(jobs, out)
    else:
        children = {}
        for k in range(1, n):
            pid = os.fork()
            if pid == 0:  # a copy of this process: draw its share and leave without cleanup
                code = 1
                try:
                    _draw(jobs[k::n], out)
                    code = 0
                finally:
                    os._exit(code)
            children[pid] = k
        _draw(jobs[0::n], out)
        for pid, k in children.items():
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:  # draw that share here, raising its error
                _draw(jobs[k::n], out)
    return [out / name for name, _ in jobs if (out / name).is_file()]
