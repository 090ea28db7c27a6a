"""Plots off the critical path: a helper process, started when a command starts, pays the imports
the drawing needs (pandas, matplotlib, the figure modules, the fonts) while the command trains,
records or reads the store. ``sweeps-analyze`` hands it its frames, with the arrays of the
fitted line, and waits: the helper draws every figure (several processes at once,
``sweeps.plots.batch``), so the command never loads matplotlib. A sweep's helper
(``sweeps.later``) takes a whole job and finishes it after the command returns. One writer per
analysis folder at a time (``holding``). Client side: standard library only."""

from __future__ import annotations

import fcntl
import logging
import pickle
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

log = logging.getLogger(__name__)
TOOK = b"took the job\n"  # a helper's line after ``hand_over``: the command may go
WAITING = b"waiting: "  # one before it, when another process holds the plots lock
LOCK_NAME = ".plots.lock"  # beside an experiment's analysis/ folder: one writer at a time


def lock_file(analysis_dir: Any) -> Path:
    """The lock of an analysis folder (outside it: the folder is uploaded as it is)."""
    return Path(analysis_dir).parent / LOCK_NAME


@contextmanager
def holding(analysis_dir: Any, say: Optional[Callable[[str], None]] = None) -> Iterator[None]:
    """Hold the analysis folder's lock (one writer at a time: a sweep's plots finished in the
    background, ``sweeps-analyze``, a re-run); ``say`` is told once if another holds it."""
    path = lock_file(analysis_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if say is not None:
                say(f"waiting for the plots still being written in {analysis_dir}")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def wait_for_plots(analysis_dir: Any) -> None:
    """Return once no process is writing that analysis folder (a sweep's plots finished in
    the background are then written and logged)."""
    with holding(analysis_dir):
        pass


class Drawer:
    """A warm helper process (``python -m MODULE``, this one by default); one job, then it ends."""

    def __init__(self, module: str = "sweeps.plots.background") -> None:
        # A session of its own: Ctrl-C at the terminal stops the command, which closes the pipe;
        # the helper ends when its stdin does (also when the command is killed outright), and
        # outlives the command once it has its job (sweeps.later finishes a sweep's plots).
        self.proc: Optional[subprocess.Popen] = subprocess.Popen(
            [sys.executable, "-m", module], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        self._job: tuple = ()

    def _submit(self, job: tuple) -> None:
        self._job = job
        if self.proc is None:
            return  # closed: _answer says so
        try:
            self.proc.stdin.write(pickle.dumps(job))
            self.proc.stdin.close()
        except OSError:  # gone already: _answer says so
            pass

    def _answer(self) -> Any:
        """The helper's answer to the job. Raises RuntimeError: it failed or is gone."""
        proc, self.proc = self.proc, None
        if proc is None:
            raise RuntimeError("the plot process was closed")
        try:
            out = proc.stdout.read()
            proc.wait()
            reply = pickle.loads(out) if out else {}
        except (OSError, pickle.UnpicklingError, EOFError) as err:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"the plot process is gone ({err})") from err
        if "result" not in reply:
            raise RuntimeError(reply.get("error") or f"the plot process ended ({proc.returncode})")
        return reply["result"]

    def hand_over(self, job: tuple, say: Optional[Callable[[str], None]] = None) -> bool:
        """Give the helper its job and wait for it to take it (it then holds the plots lock);
        afterwards it goes on alone. ``say`` is told if it waits for another writer's lock.
        False: the helper is gone (the caller does the job)."""
        self._submit(job)
        took = False
        try:
            while self.proc is not None:
                line = self.proc.stdout.readline()
                if not line.startswith(WAITING):
                    took = line == TOOK
                    break
                if say is not None:
                    say(line[len(WAITING):].decode(errors="replace").strip())
        except OSError:
            took = False
        if not took:
            self.close()
        return took

    def wait(self) -> Any:
        """After ``hand_over``: wait for the job to be done; its answer (RuntimeError: failed)."""
        return self._answer()

    def send_figures(self, runs: Any, histories: Any, out_dir: Any, line: Optional[dict] = None,
                     gif: bool = False) -> None:
        """Hand over frames (and the fitted line's arrays) to draw with
        ``sweeps.plots.batch.write_figures``; ``files()`` waits for them."""
        self._submit((runs, histories, str(out_dir), line, gif))

    def files(self) -> list:
        """The files the helper wrote; should it have failed, the figures are drawn here."""
        try:
            return self._answer()
        except RuntimeError as err:
            log.warning("plot process: %s; drawing here", err)
            from sweeps.plots.batch import write_figures

            runs, histories, out_dir, line, gif = self._job
            return write_figures(runs, histories, out_dir, line=line, gif=gif)

    def let_go(self) -> None:
        """After ``hand_over``: leave the helper to finish alone (it outlives this process)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.stdout.close()
            proc.returncode = 0  # not ours to reap: Popen must not warn it is still running

    def close(self) -> None:
        """Stop the helper without a job (an interrupted or failed sweep): it has only loaded
        modules and opened the store for reading, so it is ended at once."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                pipe.close()


def start_figures() -> Optional[Drawer]:
    """A helper that draws the frames it is handed (None if none could start: the figures are
    then drawn in this process)."""
    try:
        return Drawer()
    except OSError as err:
        log.warning("no plot process (%s): the plots are drawn in this one", err)
        return None


def _warm() -> None:
    """Load everything the drawing needs, before the frames come."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sweeps.plots import batch  # noqa: F401  # pandas and the figure modules, loaded now

    fig = Figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "0.1 e-3")  # loads the font once, for every figure and forked drawer
    FigureCanvasAgg(fig).draw()


def main() -> None:
    """The helper: warm up, then draw the one job read from stdin and answer on stdout, both
    pickled."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    reply: dict = {}
    try:
        _warm()
    except Exception as err:  # noqa: BLE001 - reported as the job's answer
        reply = {"error": f"{type(err).__name__}: {err}"}
    try:
        runs, histories, out_dir, line, gif = pickle.load(stdin)
    except EOFError:
        return  # the command ended without plots
    if not reply:
        try:
            from sweeps.plots.batch import write_figures

            reply = {"result": write_figures(runs, histories, out_dir, line=line, gif=gif)}
        except Exception as err:  # noqa: BLE001
            reply = {"error": f"{type(err).__name__}: {str(err).strip()[:500]}"}
    pickle.dump(reply, stdout)
    stdout.flush()


if __name__ == "__main__":
    main()
