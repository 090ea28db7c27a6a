"""Parallel writers against one SQLite store: the joblib launcher at N workers, several launches.

    python benchmarks/bench_stress.py [--workers 4] [--launches 5] [--seeds 4]

Each launch is the grid optimizer {sgd, adam} x lr {0.01, 0.1, 1.0} x noise {0, 0.5} x seed
(sweep.resume=false, so every launch writes every run). Prints runs, workers, errors (failed
launches, 'database is locked' in the output, FAILED runs) and lost runs (expected minus FINISHED).
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--launches", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args()
    per_launch = 2 * 3 * 2 * args.seeds
    errors = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        start = time.perf_counter()
        for i in range(args.launches):
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "sweeps", "-m", "hydra/launcher=joblib",
                 f"hydra.launcher.n_jobs={args.workers}", "optimizer=sgd,adam", "optimizer.lr=0.01,0.1,1.0",
                 "data.noise=0,0.5", f"train.seed=range(0,{args.seeds})", "train.epochs=100",
                 "sweep.resume=false", "sweep.plots=false", f"paths.output_dir={out}"],
                cwd=tmp, capture_output=True, text=True)
            bad = proc.returncode != 0 or "locked" in proc.stderr or "locked" in proc.stdout
            errors += bad
            print(f"launch {i + 1}: {per_launch} jobs in {time.perf_counter() - t:.1f} s, exit {proc.returncode}"
                  + (f"\n{proc.stderr[-1500:]}" if bad else ""), flush=True)
        with sqlite3.connect(out / "mlflow.db") as db:
            rows = db.execute(
                "select r.status, count(*) from runs r join tags t on t.run_uuid = r.run_uuid "
                "and t.key = 'sweeps.role' and t.value = 'child' group by r.status").fetchall()
        counts = dict(rows)
        expected = per_launch * args.launches
        finished = counts.get("FINISHED", 0)
        errors += counts.get("FAILED", 0) + counts.get("RUNNING", 0)
        print(f"\nruns {expected}, workers {args.workers}, launches {args.launches}, "
              f"errors {errors}, lost {expected - finished}, statuses {counts}, "
              f"{time.perf_counter() - start:.0f} s")
        sys.exit(1 if errors or expected != finished else 0)


if __name__ == "__main__":
    main()
