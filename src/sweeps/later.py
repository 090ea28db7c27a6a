"""A sweep's plots, finished off the critical path. A helper process (``python -m sweeps.later``),
started when the sweep starts, loads pandas, matplotlib and the figure modules while the jobs
run. When the sweep has closed its parent run it hands the helper one job; the helper takes the
analysis folder's lock (``sweeps.plots.background.holding``), says so, and the command returns.
The helper then reads and labels the experiment, writes labels.csv and the figures, logs them
on the parent run (files under analysis/, images under *Model metrics*) and adds them to the
run's description. A re-run of the sweep or ``sweeps-analyze`` on that experiment waits for the
lock, so nothing races it. ``sweep.wait_for_plots=true`` waits for the helper instead, as does
a sweep inside a Slurm job (whose end kills the processes it leaves).

A helper that fails writes why to ``<experiment>/plots.log`` (beside analysis/) and to the parent
run's tag ``sweeps.plots``."""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sweeps.plots.background import TOOK, WAITING, Drawer, holding

log = logging.getLogger(__name__)
TAG_PLOTS = "sweeps.plots"  # on the parent run: where the plots are, or why there are none


@dataclass
class Job:
    """What the helper needs: the store, the experiment and its parent run, and the pieces of
    the parent's description (summary.parent_note) to add the plots to."""

    uri: str
    experiment: str
    output_root: str
    parent_id: str
    note: tuple = ()  # parent_note's arguments but the plots


def analysis_dir(output_root: str, experiment: str) -> Path:
    """Where the plots of an experiment go (as sweeps.analyze.analyse puts them)."""
    return Path(output_root) / experiment / "analysis"


def start() -> Optional[Drawer]:
    """The helper, warming up (None if it could not start: the command draws at the end)."""
    try:
        return Drawer(module="sweeps.later")
    except OSError as err:
        log.warning("no plot process (%s): the plots are drawn at the end", err)
        return None


def finish(drawer: Optional[Drawer], job: Job, wait: bool) -> str:
    """Hand the job to the helper and return what to print after ``plots:``; wait for it when
    ``wait``. Without a helper the job is done here. A plotting problem is reported, not
    raised: the sweep has already been recorded."""
    where = analysis_dir(job.output_root, job.experiment).resolve()
    wait = wait or bool(os.environ.get("SLURM_JOB_ID"))  # a batch job's end kills what it left
    if drawer is not None and drawer.hand_over((job,), say=log.warning):
        if not wait:
            drawer.let_go()
            return (f"{where} (being drawn in the background; logged on the sweep's parent run "
                    "within seconds; a re-run or sweeps-analyze waits for them)")
        try:
            drawer.wait()
        except RuntimeError as err:
            log.warning("could not draw the plots: %s", err)
            return f"none ({err}; see {where.parent / 'plots.log'})"
        return f"{where} (also artifacts of the sweep's parent run)"
    try:
        with holding(where, say=log.warning):
            do(job)
    except Exception as err:  # noqa: BLE001
        log.warning("could not draw the plots: %s", err)
        return f"none ({err})"
    return f"{where} (also artifacts of the sweep's parent run)"


def do(job: Job) -> list[Path]:
    """Read, label and plot the experiment; log the files and images on the parent run and name
    the images in its description."""
    from sweeps import analyze, tracking
    from sweeps.summary import parent_note

    a = analyze.analyse(job.uri, job.experiment, output_root=job.output_root)
    files = analyze.write_outputs(a, job.uri, plots=True, parent_id=job.parent_id, gif=False)
    images = [p for p in files if p.suffix == ".png"]
    tracking.log_results(job.uri, job.parent_id, {}, images)
    tags = {TAG_PLOTS: str(a.output_dir.resolve())}
    if job.note:
        tags[tracking.TAG_NOTE] = parent_note(*job.note, [p.name for p in images])
    tracking.set_tags(job.uri, {job.parent_id: tags})
    return files


def _failed(job: Job, err: BaseException) -> None:
    """Say why in <experiment>/plots.log and on the parent run (best effort: nobody waits)."""
    where = analysis_dir(job.output_root, job.experiment).parent
    try:
        from sweeps import tracking

        where.mkdir(parents=True, exist_ok=True)  # no credential of the URI in either
        (where / "plots.log").write_text(tracking.scrub("".join(traceback.format_exception(err))))
        why = tracking.scrub(f"failed: {type(err).__name__}: {err}")[:500]
        tracking.set_tags(job.uri, {job.parent_id: {TAG_PLOTS: why}})
    except Exception:  # noqa: BLE001
        pass


def main() -> None:
    """The helper: warm up, read the job, take the lock, say so, do it, answer (pickled)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        from sweeps.plots.background import _warm

        importlib.import_module("sweeps.analyze")  # pandas, the store's reader, the labeller
        _warm()
    except Exception:  # noqa: BLE001 - the job then fails below and says why
        pass
    try:
        (job,) = pickle.load(stdin)
    except EOFError:
        return  # the sweep ended without plots
    from sweeps import secrets

    secrets.remember(job.uri)  # its password is masked in whatever this process writes
    def say(words: str) -> None:
        try:
            stdout.write(WAITING + words.encode() + b"\n")
            stdout.flush()
        except OSError:
            pass

    with holding(analysis_dir(job.output_root, job.experiment), say=say):
        reply: dict = {}
        try:
            stdout.write(TOOK)
            stdout.flush()
        except OSError:
            pass
        try:
            reply = {"result": do(job)}
        except Exception as err:  # noqa: BLE001
            _failed(job, err)
            reply = {"error": f"{type(err).__name__}: {str(err).strip()[:500]}"}
        try:
            pickle.dump(reply, stdout)
            stdout.flush()
        except OSError:
            pass  # the command did not wait


if __name__ == "__main__":
    main()
