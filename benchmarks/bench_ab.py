"""Before/after: the same sweep command with two (or more) source trees, interleaved by round.

    python benchmarks/bench_ab.py --src /work/wt-old/src /work/main/src --rounds 3
    python benchmarks/bench_ab.py --src OLD/src NEW/src --grid 144 --variants sweeps noplots

Each command is `python -m sweeps ...` as bench_sweeps.py types it, in a fresh folder, with the
tree's src/ first on PYTHONPATH and the venv's editable path to another tree taken off sys.path
(a sitecustomize in a temp folder), so each variant runs only its own code. Prints each round's
wall and CPU seconds and the medians; quote medians and the load average. Plots a tree finishes
in a background process after the command returns are waited for, untimed, before the next command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench_sweeps import grid_of, sweeps_command, timed
from sweeps.plots.background import LOCK_NAME, wait_for_plots

SHIM = """import sys
keep = [p for p in __import__('os').environ.get('PYTHONPATH', '').split(':') if p]
sys.path[:] = [p for p in sys.path if not (p.endswith('/src') and p not in keep)]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", nargs="+", required=True, help="source trees (their src/ folders)")
    ap.add_argument("--grid", type=int, choices=(72, 144), default=72)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", nargs="+", default=["sweeps", "noplots"], choices=("sweeps", "noplots"))
    args = ap.parse_args()
    srcs = [str(Path(s).resolve()) for s in args.src]
    typed = sweeps_command(grid_of(args.grid), 1)[1:]
    cmds = {"sweeps": typed, "noplots": [*typed, "sweep.plots=false"]}
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "shim").mkdir()
        (Path(tmp) / "shim" / "sitecustomize.py").write_text(SHIM)
        for r in range(args.rounds):
            for i, src in enumerate(srcs):
                for name in args.variants:
                    cwd = Path(tmp) / f"r{r}" / f"{i}-{name}"
                    cwd.mkdir(parents=True)
                    os.environ["PYTHONPATH"] = f"{src}:{tmp}/shim"
                    wall, cpu, peak, _ = timed([sys.executable, "-m", "sweeps", *cmds[name]], cwd)
                    for lock in cwd.rglob(LOCK_NAME):  # plots a tree finishes in the background
                        wait_for_plots(lock.parent / "analysis")  # land before the next command
                    times.setdefault((src, name), []).append(wall)
                    print(f"round {r + 1} {src} {name:<8} {wall:7.2f} s  cpu {cpu:6.2f} s  "
                          f"load {os.getloadavg()[0]:.2f}", flush=True)
    print("\nmedians:")
    for (src, name), t in times.items():
        print(f"  {src} {name:<8} {statistics.median(t):7.2f} s  ({', '.join(f'{x:.2f}' for x in t)})")


if __name__ == "__main__":
    main()
