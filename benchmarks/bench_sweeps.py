"""Sweep wall times, side by side in one invocation, interleaved so machine drift cancels out.

    python benchmarks/bench_sweeps.py                  # diagnostic preset (144 runs), 3 rounds
    python benchmarks/bench_sweeps.py --seeds 50       # the same grid x 50 seeds (7,200 runs)
    python benchmarks/bench_sweeps.py --rounds 1 --skip usual

Variants (each a fresh process, as a user would run it, into a fresh store):
  bare        the same loops with sweeps.loop.train in one process, no tracking, no Hydra
  usual       benchmarks/usual_app.py: Hydra multirun + mlflow.log_metric per epoch
  default     `sweeps sweep=diagnostic hydra/launcher=basic` (Hydra's basic launcher; labels, no plots)
  vectorized  `sweeps sweep=diagnostic hydra/launcher=vectorized` (the preset's own launcher)
Also prints the tracking cost per run (recording a finished History, in-process).
Quote medians and ratios: machines here are shared and noisy.
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
from sweeps.cli import config_dir
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
        "default": [py, "-m", "sweeps", "sweep=diagnostic", "hydra/launcher=basic", "sweep.plots=false",
                    "sweep.resume=false",
                    *seed_ov, f"paths.output_dir={out}/default"],
    }
    try:
        import hydra_plugins.sweeps_vectorized_launcher  # noqa: F401

        out_v["vectorized"] = [py, "-m", "sweeps", "sweep=diagnostic", "hydra/launcher=vectorized",
                               "sweep.plots=false", "sweep.resume=false", *seed_ov,
                               f"paths.output_dir={out}/vectorized"]
    except ImportError:
        pass
    return out_v


def timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]}... failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall


def tracking_cost(n: int = 100) -> float:
    """ms per run to record a finished History (params, 5-6 metrics x 200 epochs, tags,
    diagnosis, config artifacts) into a warm SQLite store."""
    from hydra import compose, initialize_config_dir

    from sweeps.app import execute
    from sweeps.cli import config_dir
    from sweeps.config import register_configs
    from sweeps.loop import train

    register_configs()
    with tempfile.TemporaryDirectory() as tmp, initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.output_dir={tmp}"])
        h = train(cfg)
        execute(cfg, [], trained=h)  # creates the store
        t = time.perf_counter()
        for _ in range(n):
            execute(cfg, [], trained=h)
        return (time.perf_counter() - t) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    ap.add_argument("--seeds", type=int, default=1, help="seeds per grid cell (50 -> 7,200 runs)")
    ap.add_argument("--skip", nargs="*", default=[], help="variants to leave out")
    ap.add_argument("--usual-rounds", type=int, default=1, help="rounds of the (slow) usual way")
    args = ap.parse_args()
    runs = len(list(itertools.product(*GRID.values()))) * args.seeds
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, cmd in variants(args.seeds, Path(tmp) / f"r{r}").items():
                if name in args.skip or (name == "usual" and r >= args.usual_rounds):
                    continue
                (Path(tmp) / f"r{r}").mkdir(exist_ok=True)
                times.setdefault(name, []).append(timed(cmd, Path(tmp)))
                print(f"round {r + 1} {name:<10} {times[name][-1]:8.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{runs} runs x 200 epochs ({os.cpu_count()} CPUs), median wall time of whole commands:")
    print(f"  {'variant':<11} {'seconds':>9} {'vs bare':>9} {'vs usual':>9}  rounds")
    for name, t in med.items():
        vs_bare = f"{t / med['bare']:.2f}x" if "bare" in med else "-"
        vs_usual = f"{t / med['usual']:.3f}x" if "usual" in med else "-"
        print(f"  {name:<11} {t:9.2f} {vs_bare:>9} {vs_usual:>9}  {len(times[name])}")
    if "usual" in med:
        for name in ("default", "vectorized"):
            if name in med:
                print(f"  {name} is {med['usual'] / med[name]:.1f}x faster than the usual way")
    print(f"  tracking cost: {tracking_cost():.1f} ms per run (record a finished run, warm SQLite store)")


if __name__ == "__main__":
    main()
