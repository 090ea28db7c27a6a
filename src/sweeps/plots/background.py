"""Plots off the critical path: a helper process, started when a command starts, pays the
imports the drawing needs (pandas, matplotlib, its fonts) while the command does its own work.

- ``start_sweep(uri)``: started with a sweep; it also loads torch and opens the store, and when
  the sweep ends it reads the sweep back, draws the figures and logs them on the parent run.
- ``start_figures()``: started by ``sweeps-analyze``; it draws the figures of the frames that
  analysis hands it while analysis writes the CSV and the fitted line.

Either way the command waits for its answer, so it returns with the plots written (and logged).
The helper draws several figures at once (``sweeps.plots.batch``). Client side: standard
library only, so starting a helper costs the command nothing it would not pay anyway."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
from typing import Any, Optional

log = logging.getLogger(__name__)


class Drawer:
    """A warm helper process (``python -m sweeps.plots.background``); one job, then it ends."""

    def __init__(self, mode: str, uri: Optional[str] = None) -> None:
        # A session of its own: Ctrl-C at the terminal stops the command, which closes the pipe;
        # the helper ends when its stdin does (also when the command is killed outright).
        self.proc: Optional[subprocess.Popen] = subprocess.Popen(
            [sys.executable, "-m", "sweeps.plots.background"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        self._job: tuple = ()
        # the URI through the pipe: argv is visible to every user's ps
        self.proc.stdin.write(pickle.dumps((mode, uri)))
        self.proc.stdin.flush()

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

    def draw_sweep(self, experiment: str, output_root: str, parent_id: str) -> str:
        """Read the sweep back, draw its plots and log them on ``parent_id``; returns the
        analysis folder. Raises RuntimeError with the helper's error."""
        self._submit(("sweep", experiment, output_root, parent_id))
        return self._answer()

    def send_figures(self, runs: Any, histories: Any, out_dir: Any) -> None:
        """Hand over frames to draw with ``sweeps.plots.batch.write_figures``; ``files()``
        waits for them."""
        self._submit(("figures", runs, histories, str(out_dir)))

    def files(self) -> list:
        """The files the helper wrote; should it have failed, the figures are drawn here."""
        try:
            return self._answer()
        except RuntimeError as err:
            log.warning("plot process: %s; drawing here", err)
            from sweeps.plots.batch import write_figures

            _, runs, histories, out_dir = self._job
            return write_figures(runs, histories, out_dir)

    def close(self) -> None:
        """Stop the helper without a job (an interrupted or failed sweep): it has only loaded
        modules and opened the store for reading, so it is ended at once."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                pipe.close()


def _start(mode: str, uri: Optional[str]) -> Optional[Drawer]:
    try:
        return Drawer(mode, uri)
    except OSError as err:
        log.warning("no plot process (%s): the plots are drawn in this one", err)
        return None


def start_sweep(uri: str) -> Optional[Drawer]:
    """A helper for a sweep into ``uri`` (None if none could start: draw in-process then)."""
    return _start("sweep", uri)


def start_figures() -> Optional[Drawer]:
    """A helper that draws frames it is handed (None if none could start)."""
    return _start("figures", None)


def _warm(mode: str, uri: Optional[str]) -> None:
    """Load everything the job will need, before it comes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sweeps.plots import batch  # noqa: F401  (pandas, the figure modules)

    fig = Figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "0.1 e-3")  # loads the font once, for every figure and forked drawer
    FigureCanvasAgg(fig).draw()
    if mode == "sweep":
        from sweeps import analyze, tracking  # noqa: F401  (MLflow)
        from sweeps.plots import fitted  # noqa: F401

        try:
            import sweeps.data  # noqa: F401  (torch: the fitted line rebuilds the run's data)
        except ImportError:
            pass
        tracking.client(uri)  # opens the store (on SQLite: MLflow's schema check)


def _run(job: tuple, uri: Optional[str]) -> Any:
    if job[0] == "sweep":
        from sweeps import analyze

        _, experiment, output_root, parent_id = job
        a = analyze.analyse(uri, experiment, output_root=output_root)
        analyze.write_outputs(a, uri, plots=True, parent_id=parent_id, gif=False)
        return str(a.output_dir.resolve())
    from sweeps.plots.batch import write_figures

    _, runs, histories, out_dir = job
    return write_figures(runs, histories, out_dir, reserve=0.0)  # the fitted line is not drawn here


def main() -> None:
    """The helper: read (mode, uri), warm up, then do the one job read from stdin and answer
    on stdout, pickled."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    mode, uri = pickle.load(stdin)
    reply: dict = {}
    try:
        _warm(mode, uri)
    except Exception as err:  # noqa: BLE001 - reported as the job's answer
        reply = {"error": f"{type(err).__name__}: {err}"}
    try:
        job = pickle.load(stdin)
    except EOFError:
        return  # the command ended without plots
    if not reply:
        try:
            reply = {"result": _run(job, uri)}
        except Exception as err:  # noqa: BLE001
            reply = {"error": f"{type(err).__name__}: {str(err).strip()[:500]}"}
    pickle.dump(reply, stdout)
    stdout.flush()


if __name__ == "__main__":
    main()
