"""Live progress of a sweep: runs done / total, failed, skipped, counts per symptom, elapsed and
ETA. Jobs (in this process or in launcher workers) drop one small marker file each in the
sweep dir; a thread here counts them. A rich bar on a terminal, plain lines otherwise.
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
