"""Labelling an existing experiment: 1,000 runs x 200 epochs, two loss keys, no labels yet; and
`sweeps-analyze` as a user types it on a small experiment another tool wrote, and on a small
sweep's own store.

    python benchmarks/bench_analyze.py [--runs 1000] [--epochs 200] [--repeat 3] [--small 8] [--own 8]

Builds the experiment once in a temporary SQLite store (not timed), then times
`sweeps-analyze --relabel` end to end in-process (read, label, tag, CSV, plots, artifacts),
and prints the median with each stage's share. Target: under 10 s on a 2-core machine.
Then times the whole `sweeps-analyze --experiment theirs --relabel` command (a fresh process:
imports, store, plots) on ``--small`` runs written by plain MLflow calls, and the whole
`sweeps-analyze --output-root <root> --relabel` on the store of a real ``--own``-run sweep (run
first, not timed, with its plots: its closing analysis caches the fitted line's data points).
Target: under 3 s for each.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def populate(uri: str, runs: int, epochs: int) -> None:
    """Runs with the shapes the symptom table names, logged as another tool would:
    params and two loss keys, no sweeps tags."""
    from sweeps import tracking

    rng = np.random.default_rng(0)
    exp = tracking.experiment_id(uri, "bench", None)
    t = np.arange(epochs)
    for i in range(runs):
        kind = i % 5
        lr = [0.001, 0.01, 0.1, 1.0][i % 4]
        noise = [0.0, 0.5, 2.0][i % 3]
        floor = noise**2 + 0.01
        if kind == 0:  # healthy
            train = floor + np.exp(-t / 20)
            val = floor * 1.1 + np.exp(-t / 20)
        elif kind == 1:  # stalled
            train = floor + 1 - 0.001 * t
            val = train * 1.05
        elif kind == 2:  # oscillating
            train = floor + 0.5 + 0.4 * np.sin(t * 2.5) * (1 + t / epochs)
            val = train * 1.1
        elif kind == 3:  # overfitting
            train = floor + np.exp(-t / 30)
            val = floor + np.exp(-t / 30) + 0.002 * np.maximum(0, t - 40)
        else:  # diverged
            train = np.exp(t / 10)
            train[train > 1e30] = math.inf
            val = train * 1.2
        train = train * (1 + 0.01 * rng.standard_normal(epochs))
        with tracking.run(uri, exp, f"run-{i}", {}, {"optimizer": ["sgd", "adam"][i % 2],
                                                  "optimizer.lr": lr, "data.noise": noise}) as rl:
            rl.queue_epochs(0, {"train_loss": train.tolist(), "val_loss": val.tolist()})


def foreign_store(folder: Path, runs: int = 8, epochs: int = 200) -> str:
    """A small experiment 'theirs' as another tool writes it with plain MLflow calls (params, a
    'loss' and an 'eval_loss' per epoch, no sweeps tags), in a new SQLite store; returns its URI."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{folder / 'theirs.db'}"
    c = MlflowClient(uri)
    exp = c.create_experiment("theirs", artifact_location=(folder / "artifacts").as_uri())
    t = np.arange(epochs)
    for i in range(runs):
        lr = [0.001, 0.01, 0.1, 1.0][i % 4]
        train = 0.05 + np.exp(-t * lr * 5) if i % 3 else 0.5 + 0.4 * np.sin(t * 2.5)
        val = train * 1.1 + (0.002 * np.maximum(0, t - 60) if i % 4 == 1 else 0)
        run = c.create_run(exp, run_name=f"theirs-{i}")
        rid = run.info.run_id
        metrics = [Metric("loss", float(v), 0, int(k)) for k, v in enumerate(train)]
        metrics += [Metric("eval_loss", float(v), 0, int(k)) for k, v in enumerate(val)]
        for k in range(0, len(metrics), 1000):
            c.log_batch(rid, metrics=metrics[k:k + 1000],
                        params=[Param("lr", str(lr)), Param("optimizer", "adam")] if k == 0 else [])
        c.set_terminated(rid)
    return uri


def time_small(runs: int, repeat: int) -> list[float]:
    """Wall seconds of `sweeps-analyze` on a fresh small foreign experiment, per repeat."""
    exe = Path(sys.executable).with_name("sweeps-analyze")
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        uri = foreign_store(Path(tmp), runs)
        cmd = [str(exe), "--tracking-uri", uri, "--experiment", "theirs", "--train-metric", "loss",
               "--val-metric", "eval_loss", "--relabel", "--output-root", str(Path(tmp) / "out")]
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, cwd=tmp)
            times.append(time.perf_counter() - t)
        if not list((Path(tmp) / "out" / "theirs" / "analysis").glob("*.png")):
            raise SystemExit("sweeps-analyze wrote no plots")
    return times


def time_own(runs: int, repeat: int) -> list[float]:
    """Wall seconds of `sweeps-analyze` on the store of a fresh sweep of ``runs`` runs (100 epochs,
    one lr per run), per repeat."""
    lrs = ",".join(f"{v:.3g}" for v in np.logspace(-3, 0.3, runs))
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "own"
        subprocess.run([str(Path(sys.executable).with_name("sweeps")), "-m", f"optimizer.lr={lrs}",
                        "train.epochs=100", f"paths.output_dir={root}", "sweep.wait_for_plots=true"],
                       check=True, capture_output=True, cwd=tmp)
        cmd = [str(Path(sys.executable).with_name("sweeps-analyze")), "--output-root", str(root), "--relabel"]
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, cwd=tmp)
            times.append(time.perf_counter() - t)
        if not list(root.glob("*/analysis/fitted_line.png")):
            raise SystemExit("sweeps-analyze drew no fitted line")
    return times


def _report(what: str, times: list[float]) -> None:
    med = statistics.median(times)
    print(f"sweeps-analyze on {what} (whole command, plots included): "
          f"{', '.join(f'{t:.2f}' for t in times)} s, median {med:.2f} s; "
          f"target < 3 s: {'met' if med < 3 else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000, help="runs of the big experiment (0: skip it)")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--small", type=int, default=8, help="runs of the small foreign experiment (0: skip)")
    ap.add_argument("--own", type=int, default=8, help="runs of the small sweep (0: skip)")
    args = ap.parse_args()
    from sweeps import analyze

    if args.runs:  # 0: only the small foreign experiment
        with tempfile.TemporaryDirectory() as tmp:
            uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
            t0 = time.perf_counter()
            populate(uri, args.runs, args.epochs)
            print(f"populated {args.runs} runs x {args.epochs} epochs in {time.perf_counter() - t0:.1f} s")
            times = []
            for i in range(args.repeat):
                stages = {}
                t = time.perf_counter()
                a = analyze.analyse(uri, "bench", relabel=True, output_root=str(Path(tmp) / "out"))
                stages["read+label+tag"] = time.perf_counter() - t
                t2 = time.perf_counter()
                analyze.write_outputs(a, uri, plots=True)
                stages["csv+plots+artifacts"] = time.perf_counter() - t2
                total = time.perf_counter() - t
                times.append(total)
                counts = a.runs["symptom"].value_counts().to_dict()
                print(f"run {i + 1}: {total:.2f} s  " + "  ".join(f"{k} {v:.2f} s" for k, v in stages.items())
                      + f"  labels {counts}")
            med = statistics.median(times)
            print(f"median {med:.2f} s for {args.runs} runs ({1000 * med / args.runs:.1f} ms/run); "
                  f"target < 10 s: {'met' if med < 10 else 'NOT met'}")
    if args.small:
        _report(f"a foreign experiment of {args.small} runs", time_small(args.small, args.repeat))
    if args.own:
        _report(f"a sweep's own store of {args.own} runs", time_own(args.own, args.repeat))
    sys.exit(0)


if __name__ == "__main__":
    main()
