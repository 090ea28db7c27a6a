"""The fixed costs every `sweeps` / `sweeps-analyze` command pays before (and besides) its work:
interpreter start, imports, Hydra's start and composition, opening the store, the plot helper's
warm-up. Each line is a whole fresh process, medians over interleaved rounds.

    python benchmarks/bench_fixed.py [--rounds 5]

Imports are timed as `python -c "import X"` minus `python -c pass`; the store opening is timed
inside a process that has imported MLflow already (MLflow's SQLAlchemy store: its import and ORM
set-up, the schema check), on a store with one sweep in it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
BIN = Path(PY).parent
OPEN_STORE = """
import sys, time
import mlflow.tracking
from sweeps import tracking
t = time.perf_counter()
tracking.client(sys.argv[1]).search_experiments()
print(time.perf_counter() - t)
"""
WARM = """
import sys, time
from sweeps.plots import background
t = time.perf_counter()
background._warm()
print(time.perf_counter() - t)
"""


def commands(store: str) -> dict[str, list[str]]:
    return {
        "python -c pass": [PY, "-c", "pass"],
        "import torch": [PY, "-c", "import torch"],
        "import mlflow": [PY, "-c", "import mlflow"],
        "import hydra + omegaconf": [PY, "-c", "import hydra, omegaconf"],
        "import pandas": [PY, "-c", "import pandas"],
        "import matplotlib (Agg)": [PY, "-c", "import matplotlib.figure, matplotlib.backends.backend_agg"],
        "import sweeps.cli": [PY, "-c", "import sweeps.cli"],
        "sweeps --cfg job": [str(BIN / "sweeps"), "--cfg", "job"],
        "sweeps-analyze --help": [str(BIN / "sweeps-analyze"), "--help"],
        "sweeps train.epochs=1 (one run)": [str(BIN / "sweeps"), "train.epochs=1"],
        "open store (in-process)": [PY, "-c", OPEN_STORE, store],
        "plot helper warm-up (in-process)": [PY, "-c", WARM],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(BIN / "sweeps"), "sweep=smoke", "sweep.plots=false"], cwd=tmp,
                       check=True, capture_output=True)
        store = f"sqlite:///{Path(tmp) / 'outputs' / 'mlflow.db'}"
        for r in range(args.rounds):
            for name, cmd in commands(store).items():
                t = time.perf_counter()
                proc = subprocess.run(cmd, cwd=tmp, check=True, capture_output=True, text=True)
                wall = time.perf_counter() - t
                if "in-process" in name:
                    wall = float(proc.stdout.strip().splitlines()[-1])
                times.setdefault(name, []).append(wall)
            print(f"round {r + 1} done", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["python -c pass"]
    print(f"\nfixed costs, median of {args.rounds} rounds (seconds; imports net of `python -c pass`):")
    for name, t in med.items():
        net = t - base if name.startswith("import ") else t
        print(f"  {name:<44} {net:6.2f}")


if __name__ == "__main__":
    main()
