"""Live progress of a sweep: runs done / total, failed, skipped, counts per symptom, elapsed and
ETA. Jobs (in this process or in launcher workers) drop one small marker file each in the
sweep dir; a thread here counts them. A rich bar on a terminal, plain lines otherwise.
Then what the MLflow UI shows of it: the experiment's and the parent run's descriptions.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Optional

JOBS_DIR = ".sweeps/jobs"  # one file per ended job: "<status> <symptom>"


def mark_job(sweep_dir: str, job_num: int, status: str, symptom: str = "") -> None:
    """Record that a job ended (FINISHED, FAILED, KILLED or SKIPPED) and with which symptom."""
    folder = Path(sweep_dir) / JOBS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(job_num)).write_text(f"{status} {symptom}".strip())


def read_marks(sweep_dir: str) -> Counter:
    """Counts of ended jobs by status and by symptom (keys 'FINISHED', ..., 'symptom:healthy')."""
    counts: Counter = Counter()
    folder = Path(sweep_dir) / JOBS_DIR
    if not folder.is_dir():
        return counts
    for f in folder.iterdir():
        try:
            parts = f.read_text().split()
        except OSError:
            continue
        if parts:
            counts[parts[0]] += 1
            if len(parts) > 1:
                counts[f"symptom:{parts[1]}"] += 1
    return counts


def line(counts: Counter, total: Optional[int], elapsed: float) -> str:
    """One status line, e.g. ``36/144 done, 1 failed, 0 skipped | 20 healthy, 4 diverged |
    12 s elapsed, ~36 s left``."""
    done = counts["FINISHED"] + counts["FAILED"] + counts["KILLED"] + counts["SKIPPED"]
    head = f"{done}/{total}" if total else f"{done}"
    symptoms = ", ".join(f"{n} {k.split(':', 1)[1]}" for k, n in sorted(counts.items()) if k.startswith("symptom:"))
    ran = done - counts["SKIPPED"]
    eta = ""
    if total and ran and done < total:
        eta = f", ~{elapsed / ran * (total - done):.0f} s left"
    return (f"{head} done, {counts['FAILED']} failed, {counts['SKIPPED']} skipped"
            f"{' | ' + symptoms if symptoms else ''} | {elapsed:.0f} s elapsed{eta}")


class Progress:
    """Shows a sweep's progress until ``stop``; a rich bar on a terminal, else a plain line
    every ``every_s`` seconds (and whenever another tenth of the jobs has ended)."""

    def __init__(self, sweep_dir: str, total: Optional[int], every_s: float = 10.0) -> None:
        self.sweep_dir, self.total, self.every_s = sweep_dir, total, every_s
        self.start = time.perf_counter()
        self._stop = threading.Event()
        self._tty = sys.stderr.isatty()
        self._thread = threading.Thread(target=self._run, name="sweeps-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._tty:
            self._run_rich()
        else:
            self._run_plain()

    def _run_plain(self) -> None:
        last_print, last_tenth, last_done = time.perf_counter(), 0, 0
        while True:
            stopping = self._stop.wait(0.5)
            counts = read_marks(self.sweep_dir)
            done = sum(counts[s] for s in ("FINISHED", "FAILED", "KILLED", "SKIPPED"))
            tenth = int(10 * done / self.total) if self.total else 0
            now = time.perf_counter()
            # a line every every_s, per tenth of the jobs, and the final count when it stops
            if now - last_print >= self.every_s or tenth > last_tenth or (stopping and done > last_done):
                print(f"progress: {line(counts, self.total, now - self.start)}", file=sys.stderr, flush=True)
                last_print, last_tenth, last_done = now, tenth, done
            if stopping:
                return

    def _run_rich(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn
        from rich.progress import Progress as Bar

        with Bar(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                 TimeRemainingColumn(), TextColumn("{task.description}"),
                 console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("", total=self.total)
            while not self._stop.wait(0.25):
                counts = read_marks(self.sweep_dir)
                done = sum(counts[s] for s in ("FINISHED", "FAILED", "KILLED", "SKIPPED"))
                symptoms = ", ".join(f"{n} {k.split(':', 1)[1]}" for k, n in sorted(counts.items())
                                     if k.startswith("symptom:"))
                bar.update(task, completed=done, description=f"{counts['FAILED']} failed, "
                           f"{counts['SKIPPED']} skipped  {symptoms}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


# --- what the MLflow UI shows of a sweep -------------------------------------------------------

def swept(params: dict, task_overrides: list[str]) -> list[str]:
    """The swept overrides of a launch (``optimizer.lr=0.001,0.01``): the preset's
    ``hydra.sweeper.params`` and the command line's, the command line's winning."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    items = [f"{k}={v}" for k, v in params.items()] + list(task_overrides)
    out: dict[str, str] = {}
    for ov in OverridesParser.create().parse_overrides(items):
        if ov.is_sweep_override():
            out[ov.key_or_group] = ov.input_line.strip()
        else:
            out.pop(ov.key_or_group, None)
    return list(out.values())


def experiment_note(experiment: str, grid: list[str], runs: Optional[int], url: Optional[str]) -> str:
    """The experiment's description (markdown): where its runs are (MLflow opens an experiment
    in its GenAI view, with this text on top), what a sweep is, its grid, what to type."""
    link = f"[the runs table]({url.split('/', 3)[-1]})" if url else "the runs table"
    lines = [
        f"**Training runs of `sweeps`, not traces: open {link}** (or switch *GenAI* to *Model "
        "training* at the top left, then *Runs*). Each launch is a parent run with the summary, "
        "the plots and runs-per-symptom metrics; expand its row for one child run per grid "
        "point, labelled in the tags `symptom` (`healthy`, `diverged`, `stalled`, `oscillating`, "
        "`overfitting`), `cause` and `fix` (the run's description gives the evidence).",
        "",
        f"**Latest grid** of experiment `{experiment}` ({runs if runs else '?'} runs): "
        + (" x ".join(f"`{g}`" for g in grid) or "one run"),
        "",
        "- the `symptom` column: *Columns* > Tags > symptom",
        "- only the diverged runs: type `tags.symptom = 'diverged'` in the search box",
        "- every run of every launch, flat: `tags.sweeps.role = 'child'`",
        "- counts per symptom: *Group by* `tags.symptom`, or the *Chart* view (the parent's "
        "`runs/<symptom>` metrics)",
    ]
    return "\n".join(lines)


def parent_metrics(by_symptom: dict[str, int], failed: int, best_val_loss: Optional[float]) -> dict[str, float]:
    """The parent run's metrics for the chart view: runs per symptom (0 for the absent ones),
    failed runs, and the best healthy validation loss."""
    from sweeps.diagnose import SYMPTOMS

    metrics = {f"runs/{s}": float(by_symptom.get(s, 0)) for s in SYMPTOMS}
    metrics["runs/failed"] = float(failed)
    if best_val_loss is not None and best_val_loss == best_val_loss:
        metrics["best_val_loss"] = float(best_val_loss)
    return metrics


def parent_note(summary: str, by_symptom: dict[str, int], examples: dict[str, str], best: str,
                errors: list[str], plots: list[str]) -> str:
    """The parent run's description (markdown): the summary table, the best run, failures and
    the plots (shown as images under *Model metrics*, stored as artifacts under analysis/)."""
    from sweeps.diagnose import SYMPTOMS

    head = summary.splitlines()[0] if summary else ""
    lines = [f"**{head}**", "", "| symptom | runs | example |", "|---|---:|---|"]
    lines += [f"| `{s}` | {by_symptom[s]} | {examples.get(s, '')} |" for s in SYMPTOMS if s in by_symptom]
    if best:
        lines += ["", f"Best healthy run: {best}"]
    if errors:
        lines += ["", "Failed:"] + [f"- {e}" for e in errors[:20]]
    if plots:
        lines += ["", "Plots (images under *Model metrics*, files under *Artifacts* > analysis): "
                  + ", ".join(f"`{p}`" for p in plots)]
    lines += ["", "Its runs: expand this run's row in the runs table, or filter "
              "`tags.symptom = 'diverged'`; the chart view compares the `runs/<symptom>` counts."]
    return "\n".join(lines)


def where_to_browse(uri: str, experiment: str, experiment_id: Optional[str] = None) -> list[str]:
    """How to open the results: the store, the `mlflow ui` command for a local one, and the URL
    of the experiment's runs in the UI's Model training view (no credentials in either)."""
    from sweeps import tracking

    shown = tracking.scrub(uri)
    if experiment_id is None:
        found = tracking.find_experiment(uri, experiment)
        experiment_id = found[0] if found else None
    url = tracking.runs_url(uri, experiment_id) if experiment_id is not None else None
    lines = [f"  store: {shown} (experiment '{experiment}')"]
    if shown.startswith(("http://", "https://")):
        return lines + ([f"  runs: {url}"] if url else [])
    lines.append(f"  browse: mlflow ui --backend-store-uri {shown}")
    return lines + ([f"  then open: {url}"] if url else [])
