"""The end-of-sweep plots, off the sweep's critical path: a helper process started with the sweep
pays the imports (pandas, matplotlib, torch for the data, MLflow's store) while the jobs train
and are recorded; when the sweep ends it reads the sweep back, draws the figures (several
processes at once) and logs them on the parent run. The sweep waits for it, so the command
returns with the plots written and logged. Client side: standard library only."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import Optional

log = logging.getLogger(__name__)


class Drawer:
    """A warm helper process for one sweep's plots (``python -m sweeps.plots.background``)."""

    def __init__(self, uri: str) -> None:
        # A session of its own: Ctrl-C at the terminal stops the sweep, which then closes the
        # pipe; the helper ends when its stdin does (also when the sweep is killed outright).
        self.proc: Optional[subprocess.Popen] = subprocess.Popen(
            [sys.executable, "-m", "sweeps.plots.background"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        self.proc.stdin.write(uri + "\n")  # not in argv, where any user's ps would show it
        self.proc.stdin.flush()

    def draw(self, experiment: str, output_root: str, parent_id: str) -> str:
        """Draw and log the plots; returns the analysis folder.

        Raises:
            RuntimeError: the helper failed (its error) or is gone.
        """
        proc, self.proc = self.proc, None
        if proc is None:
            raise RuntimeError("the plot process was closed")
        job = {"experiment": experiment, "output_root": output_root, "parent_id": parent_id}
        try:
            out, _ = proc.communicate(json.dumps(job) + "\n")
        except (BrokenPipeError, OSError) as err:
            proc.kill()
            raise RuntimeError(f"the plot process is gone ({err})") from err
        reply = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        if "dir" not in reply:
            raise RuntimeError(reply.get("error") or f"the plot process ended ({proc.returncode})")
        return reply["dir"]

    def close(self) -> None:
        """Let the helper go without drawing (an interrupted or failed sweep)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start(uri: str) -> Optional[Drawer]:
    """A Drawer for a sweep into ``uri``, or None when no process can be started (the sweep then
    draws its plots itself)."""
    try:
        return Drawer(uri)
    except OSError as err:
        log.warning("no plot process (%s): the plots are drawn at the end", err)
        return None


def _warm(uri: str) -> None:
    """Everything the drawing needs, loaded before the sweep ends."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sweeps import analyze, tracking  # noqa: F401  (pandas, MLflow)
    from sweeps.plots import batch, fitted  # noqa: F401  (the figure modules)

    fig = Figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "0.1 e-3")  # loads the font and its glyphs once, for every figure
    FigureCanvasAgg(fig).draw()
    try:
        import sweeps.data  # noqa: F401  (torch: the fitted line rebuilds the run's data)
    except ImportError:
        pass
    tracking.client(uri)  # opens the store (on SQLite: MLflow's schema check)


def main() -> None:
    """The helper: read the store's URI, warm up, then draw the one job read from stdin and
    answer on stdout."""
    uri = sys.stdin.readline().strip()
    reply: dict = {}
    try:
        _warm(uri)
    except Exception as err:  # noqa: BLE001 - reported with the job's answer
        reply = {"error": f"{type(err).__name__}: {err}"}
    line = sys.stdin.readline()
    if not line.strip():
        return  # the sweep ended without plots
    if not reply:
        try:
            from sweeps import analyze

            job = json.loads(line)
            a = analyze.analyse(uri, job["experiment"], output_root=job["output_root"])
            analyze.write_outputs(a, uri, plots=True, parent_id=job["parent_id"], gif=False)
            reply = {"dir": str(a.output_dir.resolve())}
        except Exception as err:  # noqa: BLE001
            reply = {"error": f"{type(err).__name__}: {str(err).strip()[:500]}"}
    print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
