"""Sweep wall times, side by side in one invocation, interleaved so machine drift cancels out.

    python benchmarks/bench_sweeps.py                  # diagnostic preset (144 runs), 3 rounds
    python benchmarks/bench_sweeps.py --seeds 50       # the same grid x 50 seeds (7,200 runs)
    python benchmarks/bench_sweeps.py --rounds 1 --skip usual

Variants (each a fresh process, as a user would run it, into a fresh store):
  bare        the same loops with sweeps.loop.train in one process, no tracking, no Hydra
  usual       benchmarks/usual_app.py: Hydra multirun + mlflow.log_metric per epoch
  basic       `sweeps sweep=diagnostic hydra/launcher=basic` (Hydra's basic launcher: the loops one
              by one, each job recorded as it ends; labels, no plots)
  vectorized  `sweeps sweep=diagnostic` (the default launcher, hydra/launcher=vectorized: batched
              programs, runs recorded in bulk; labels, no plots)
Prints wall times, ratios and each command's peak memory (max RSS), then the tracking cost per
run: recording a finished History one run at a time (what the basic launcher does per job) and
in bulk (what the vectorized launcher does), in-process, into a warm SQLite store.
New SQLite stores start from sweeps' cached empty store (~/.cache/sweeps), made on the first run;
the usual app lets MLflow create its store. Quote medians and ratios: machines here are shared
and noisy.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GRID = {
    "model": ["linear", "poly"],
    "optimizer": ["sgd", "adam", "rmsprop"],
    "optimizer.lr": ["0.001", "0.01", "0.1", "1.0"],
    "data.noise": ["0.0", "0.5", "2.0"],
    "train.zero_grad": ["true", "false"],
}
USUAL_KEYS = {"model": "model", "optimizer": "optimizer", "optimizer.lr": "lr", "data.noise": "noise",
              "train.zero_grad": "zero_grad", "train.seed": "seed"}

BARE = """
import sys, time, itertools
from hydra import initialize_config_dir, compose
from sweeps.config import config_dir
from sweeps.config import register_configs
from sweeps.loop import train
register_configs()
grid = {grid!r}
seeds = {seeds}
with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
    base = compose("config", overrides=["data=few"])
    cfgs = {{}}
    for values in itertools.product(*grid.values()):
        choice = dict(zip(grid, values))
        key = (choice["model"], choice["optimizer"])
        if key not in cfgs:
            cfgs[key] = compose("config", overrides=["data=few", f"model={{key[0]}}", f"optimizer={{key[1]}}"])
from omegaconf import OmegaConf
for values in itertools.product(*grid.values()):
    choice = dict(zip(grid, values))
    cfg = OmegaConf.masked_copy(cfgs[(choice["model"], choice["optimizer"])], ["data", "model", "optimizer", "train"])
    cfg.optimizer.lr = float(choice["optimizer.lr"]); cfg.data.noise = float(choice["data.noise"])
    cfg.train.zero_grad = choice["train.zero_grad"] == "true"
    for seed in range(seeds):
        cfg.train.seed = seed
        train(cfg)
"""


def _sweep_args(seeds: int) -> list[str]:
    return [f"train.seed=range(0,{seeds})"] if seeds > 1 else []


def variants(seeds: int, out: Path) -> dict[str, list[str]]:
    py = sys.executable
    seed_ov = _sweep_args(seeds)
    usual_grid = [f"{USUAL_KEYS[k]}={','.join(v)}" for k, v in GRID.items()]
    if seeds > 1:
        usual_grid.append(f"seed=range(0,{seeds})")
    out_v = {
        "bare": [py, "-c", BARE.format(grid=GRID, seeds=seeds)],
        "usual": [py, str(HERE / "usual_app.py"), "-m", *usual_grid,
                  f"tracking_uri=sqlite:///{out}/usual.db", f"hydra.sweep.dir={out}/usual_multirun"],
        "basic": [py, "-m", "sweeps", "sweep=diagnostic", "hydra/launcher=basic", "sweep.plots=false",
                  "sweep.resume=false", *seed_ov, f"paths.output_dir={out}/basic"],
        "vectorized": [py, "-m", "sweeps", "sweep=diagnostic", "sweep.plots=false", "sweep.resume=false",
                       *seed_ov, f"paths.output_dir={out}/vectorized"],
    }
    return out_v


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak resident memory in MB) of one command."""
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out.seek(0)
            raise SystemExit(f"{cmd[:4]}... failed ({proc.returncode}):\n{out.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # ru_maxrss is in KB on Linux


def tracking_cost(n: int = 100) -> tuple[float, float]:
    """ms per run to record finished Histories (params, 6 metrics x 200 epochs, tags, diagnosis,
    config artifacts) into a warm SQLite store: (one run at a time through sweeps.app.execute,
    as the basic launcher records each job; in bulk, as the vectorized launcher records them)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from sweeps import app, tracking
    from sweeps.config import config_dir
    from sweeps.config import register_configs
    from sweeps.loop import train

    register_configs()
    with tempfile.TemporaryDirectory() as tmp, initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.output_dir={tmp}"])
        h = train(cfg)
        app.execute(cfg, [], trained=h)  # opens the store
        t = time.perf_counter()
        for _ in range(n):
            app.execute(cfg, [], trained=h)
        one = (time.perf_counter() - t) / n * 1000

        uri, experiment, artifacts = app.store_location(cfg)
        exp_id = tracking.experiment_id(uri, experiment, str(artifacts))
        t = time.perf_counter()
        logs = []
        for _ in range(n):  # what the vectorized launcher does per job, then one transaction
            c = OmegaConf.to_container(cfg, resolve=True)
            tags, params = app.describe(c, [], {}, None)
            d = app.label(c, h)
            rl = tracking.RunLog.open(uri, exp_id, app.run_name(c, []), tags)
            rl.add(params=params, tags=app.outcome_tags(d, h), texts=app.config_texts(c, {}))
            rl.queue_epochs(0, h.metrics)
            logs.append(rl)
        tracking.finish_many(uri, logs, "FINISHED")
        bulk = (time.perf_counter() - t) / n * 1000
    return one, bulk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    ap.add_argument("--seeds", type=int, default=1, help="seeds per grid cell (50 -> 7,200 runs)")
    ap.add_argument("--skip", nargs="*", default=[], help="variants to leave out")
    ap.add_argument("--usual-rounds", type=int, default=1, help="rounds of the (slow) usual way")
    args = ap.parse_args()
    runs = len(list(itertools.product(*GRID.values()))) * args.seeds
    times: dict[str, list[float]] = {}
    peaks: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, cmd in variants(args.seeds, Path(tmp) / f"r{r}").items():
                if name in args.skip or (name == "usual" and r >= args.usual_rounds):
                    continue
                (Path(tmp) / f"r{r}").mkdir(exist_ok=True)
                wall, peak = timed(cmd, Path(tmp))
                times.setdefault(name, []).append(wall)
                peaks.setdefault(name, []).append(peak)
                print(f"round {r + 1} {name:<10} {wall:8.2f} s  peak {peak:6.0f} MB", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{runs} runs x 200 epochs ({os.cpu_count()} CPUs), median wall time of whole commands:")
    print(f"  {'variant':<11} {'seconds':>9} {'vs bare':>9} {'vs usual':>9} {'peak MB':>8}  rounds")
    for name, t in med.items():
        vs_bare = f"{t / med['bare']:.2f}x" if "bare" in med else "-"
        vs_usual = f"{t / med['usual']:.3f}x" if "usual" in med else "-"
        print(f"  {name:<11} {t:9.2f} {vs_bare:>9} {vs_usual:>9} {max(peaks[name]):8.0f}  {len(times[name])}")
    if "usual" in med:
        for name in ("basic", "vectorized"):
            if name in med:
                print(f"  {name} is {med['usual'] / med[name]:.1f}x faster than the usual way")
    one, bulk = tracking_cost()
    print(f"  tracking cost per run (warm SQLite store): {one:.1f} ms one at a time, {bulk:.1f} ms in bulk")


if __name__ == "__main__":
    main()
