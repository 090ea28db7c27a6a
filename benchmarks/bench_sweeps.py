"""Sweep wall times of whole commands as users type them, side by side in one invocation,
interleaved so machine drift cancels out.

    python benchmarks/bench_sweeps.py                      # the 72-run grid, 3 rounds
    python benchmarks/bench_sweeps.py --grid 144           # the diagnostic preset (144 runs)
    python benchmarks/bench_sweeps.py --grid 144 --server  # + the same sweep into a local mlflow server
    python benchmarks/bench_sweeps.py --seeds 50 --grid 144 --rounds 1 --skip usual basic bare

Grids: 72 = optimizer {sgd, adam, rmsprop} x lr {0.001, 0.01, 0.1, 1.0} x noise {0, 0.5, 2} x
zero_grad {on, off}, linear model, 12 training points (data=few); 144 = the same x model {linear,
poly} (`sweeps sweep=diagnostic`). Variants (each a fresh process in a fresh folder, writing to
the default outputs/ there, as a user would run it):
  bare        the same loops with sweeps.loop.train in one process, no tracking, no Hydra
  usual       benchmarks/usual_app.py: Hydra multirun + mlflow.log_metric per epoch
  basic       `sweeps ... hydra/launcher=basic sweep.plots=false` (the loops one by one)
  sweeps      the command as typed: `sweeps -m optimizer=sgd,adam,rmsprop ...` / `sweeps
              sweep=diagnostic` (default launcher, labels; the end-of-sweep plots are finished
              by a helper process after the command returns: timed apart, as "plots written and
              logged", and waited for before the next command; its CPU is not in "cpu s")
  noplots     the same with `sweep.plots=false`
  server      with --server: `sweeps` as typed plus tracking.uri=<a local `mlflow server`
              (SQLite backend in a temp folder, --serve-artifacts) started by this benchmark>
  server-noplots  the same with `sweep.plots=false`
Prints wall times, ratios, each command's peak memory (max RSS of its largest process), the
plots' cost (sweeps - noplots), then the tracking cost per run, one at a time and in bulk,
in-process into a warm SQLite store. New SQLite stores start from sweeps' cached empty store
(~/.cache/sweeps), made on the first run; the usual app lets MLflow create its store. Quote
medians and ratios: machines here are shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweeps.plots.background import LOCK_NAME, wait_for_plots

from local_server import mlflow_server

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the console scripts users run (sweeps, sweeps-analyze)
GRID = {
    "model": ["linear", "poly"],
    "optimizer": ["sgd", "adam", "rmsprop"],
    "optimizer.lr": ["0.001", "0.01", "0.1", "1.0"],
    "data.noise": ["0.0", "0.5", "2.0"],
    "train.zero_grad": ["true", "false"],
}


def grid_of(size: int) -> dict[str, list[str]]:
    """The 144-run diagnostic grid, or its 72 linear-model runs."""
    return GRID if size == 144 else {**GRID, "model": ["linear"]}


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


def sweeps_command(grid: dict[str, list[str]], seeds: int) -> list[str]:
    """The sweep as a user types it."""
    seed_ov = [f"train.seed=range(0,{seeds})"] if seeds > 1 else []
    if len(grid["model"]) == 2:
        return [str(BIN / "sweeps"), "sweep=diagnostic", *seed_ov]
    swept = [f"{k}={','.join(v)}" for k, v in grid.items() if k != "model"]
    return [str(BIN / "sweeps"), "-m", "data=few", *swept, *seed_ov]


def variants(grid: dict[str, list[str]], seeds: int, out: Path, server: str = "",
             round_: int = 0) -> dict[str, list[str]]:
    py = sys.executable
    usual_grid = [f"{USUAL_KEYS[k]}={','.join(v)}" for k, v in grid.items()]
    if seeds > 1:
        usual_grid.append(f"seed=range(0,{seeds})")
    typed = sweeps_command(grid, seeds)
    out_v = {
        "bare": [py, "-c", BARE.format(grid=grid, seeds=seeds)],
        "usual": [py, str(HERE / "usual_app.py"), "-m", *usual_grid,
                  f"tracking_uri=sqlite:///{out}/usual.db", f"hydra.sweep.dir={out}/usual_multirun"],
        "basic": [*typed, "hydra/launcher=basic", "sweep.plots=false"],
        "sweeps": typed,
        "noplots": [*typed, "sweep.plots=false"],
    }
    if server:  # a fresh experiment on the one server per round: nothing to resume
        at = [f"tracking.uri={server}", f"tracking.experiment=bench-r{round_}"]
        out_v["server"] = [*typed, *at]
        out_v["server-noplots"] = [*typed, *at[:1], f"tracking.experiment=bench-np-r{round_}",
                                   "sweep.plots=false"]
    return out_v


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds (user + system, with the processes it waited for), peak
    resident memory in MB, output) of one command."""
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[:4]}... failed ({proc.returncode}):\n{text[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text  # maxrss in KB


def tracking_cost(n: int = 100) -> tuple[float, float]:
    """ms per run to record finished Histories (params, 6 metrics x 200 epochs, tags, diagnosis,
    config artifacts) into a warm SQLite store: (one run at a time through sweeps.app.execute,
    as the basic launcher records each job; in bulk, as the vectorized launcher records them)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from sweeps import app, record, tracking
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
            rec = record.begin(c, [], {}, host="bench", pid=0)
            rl = tracking.RunLog.open(uri, exp_id, rec.name, rec.tags, lazy=True)
            rl.add(params=rec.params)
            app.write(rl, record.complete(rec, c, h, app.label(c, h), {}))
            logs.append(rl)
        tracking.finish_many(uri, logs, "FINISHED")
        bulk = (time.perf_counter() - t) / n * 1000
    return one, bulk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grid", type=int, choices=(72, 144), default=72, help="runs per seed")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    ap.add_argument("--seeds", type=int, default=1, help="seeds per grid cell (50 -> 7,200 runs)")
    ap.add_argument("--skip", nargs="*", default=[], help="variants to leave out")
    ap.add_argument("--usual-rounds", type=int, default=1, help="rounds of the (slow) usual way")
    ap.add_argument("--server", action="store_true",
                    help="add the sweep against a local mlflow server (SQLite backend, --serve-artifacts)")
    ap.add_argument("--server-rounds", type=int, default=1, help="rounds of the server variants")
    ap.add_argument("--no-tracking-cost", action="store_true", help="skip the in-process tracking cost")
    args = ap.parse_args()
    grid = grid_of(args.grid)
    runs = len(list(itertools.product(*grid.values()))) * args.seeds
    times: dict[str, list[float]] = {}
    peaks: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    landed: dict[str, list[float]] = {}  # from the command's start to its plots logged
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        server = stack.enter_context(mlflow_server(Path(tmp) / "server")) if args.server else ""
        for r in range(args.rounds):
            for name, cmd in variants(grid, args.seeds, Path(tmp) / f"r{r}", server, r).items():
                if name in args.skip or (name == "usual" and r >= args.usual_rounds) \
                        or (name.startswith("server") and r >= args.server_rounds):
                    continue
                cwd = Path(tmp) / f"r{r}" / name  # a fresh folder: outputs/ lands there
                cwd.mkdir(parents=True)
                start = time.perf_counter()
                wall, cpu, peak, text = timed(cmd, cwd)
                if name in ("sweeps", "server"):
                    if "  plots: " not in text:
                        raise SystemExit(f"{name}: the sweep wrote no plots:\n{text[-2000:]}")
                    for lock in cwd.rglob(LOCK_NAME):  # the plots it finishes in the background
                        wait_for_plots(lock.parent / "analysis")  # land before the next command
                    landed.setdefault(name, []).append(time.perf_counter() - start)
                times.setdefault(name, []).append(wall)
                peaks.setdefault(name, []).append(peak)
                cpus.setdefault(name, []).append(cpu)
                print(f"round {r + 1} {name:<14} {wall:8.2f} s  cpu {cpu:7.2f} s  peak {peak:6.0f} MB",
                      flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{runs} runs x 200 epochs ({os.cpu_count()} CPUs), median wall time of whole commands:")
    print(f"  {'variant':<14} {'seconds':>9} {'vs bare':>9} {'vs usual':>9} {'cpu s':>8} {'peak MB':>8}  rounds")
    for name, t in med.items():
        vs_bare = f"{t / med['bare']:.2f}x" if "bare" in med else "-"
        vs_usual = f"{t / med['usual']:.3f}x" if "usual" in med else "-"
        print(f"  {name:<14} {t:9.2f} {vs_bare:>9} {vs_usual:>9} {statistics.median(cpus[name]):8.2f} "
              f"{max(peaks[name]):8.0f}  {len(times[name])}")
    for name, t in landed.items():
        print(f"  {name}: plots written and logged {statistics.median(t):.2f} s after the command "
              f"started (median; it returned at {med[name]:.2f} s, the rest in the background)")
    if "usual" in med:
        for name in ("basic", "sweeps", "noplots"):
            if name in med:
                print(f"  {name} is {med['usual'] / med[name]:.1f}x faster than the usual way")
    for a, b, what in (("sweeps", "noplots", "the end-of-sweep plots add"),
                       ("server", "server-noplots", "against the server, the plots add"),
                       ("server", "sweeps", "server / SQLite (plots on):"),
                       ("server-noplots", "noplots", "server / SQLite (no plots):")):
        if a in times and b in times:
            if what.endswith(":"):
                print(f"  {what} {med[a] / med[b]:.2f}x")
            else:  # paired by round: the two commands ran back to back
                diffs = [x - y for x, y in zip(times[a], times[b])]
                cpu = statistics.median(x - y for x, y in zip(cpus[a], cpus[b]))
                print(f"  {what} {statistics.median(diffs):+.2f} s wall, {cpu:+.2f} s CPU (median of "
                      f"per-round differences: {', '.join(f'{d:+.2f}' for d in diffs)} s wall)")
    if not args.no_tracking_cost:
        one, bulk = tracking_cost()
        print(f"  tracking cost per run (warm SQLite store): {one:.1f} ms one at a time, {bulk:.1f} ms in bulk")


if __name__ == "__main__":
    main()
