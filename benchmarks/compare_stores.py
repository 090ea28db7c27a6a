"""Do two stores hold the same sweep? Compares, per config hash, the child runs of one experiment
in two SQLite stores: params, tags and every metric history, value by value. Used to check that
a refactor leaves what a sweep stores unchanged (e.g. a store made by the previous commit beside
one made by this one).

    python benchmarks/compare_stores.py OLD.db NEW.db --experiment diagnostic

Tags that name a process, a time or another run (pid, parent run id, sweep dir) are left out,
and each store's own folder is written <root> (two stores live in two folders).
Exit 0 when equal; otherwise the differences, one per line, and exit 1.
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import sys
from collections import defaultdict

VOLATILE = {"sweeps.pid", "mlflow.parentRunId", "sweeps.sweep_dir"}


def _runs(path: str, experiment: str) -> dict[str, dict]:
    root = os.path.dirname(os.path.abspath(path))

    def norm(items) -> dict[str, str]:
        return {k: v.replace(root, "<root>") if isinstance(v, str) else v for k, v in items}

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        exp = db.execute("select experiment_id from experiments where name = ?", (experiment,)).fetchone()
        if exp is None:
            raise SystemExit(f"{path}: no experiment {experiment!r}")
        ids = [r for (r,) in db.execute(
            "select r.run_uuid from runs r join tags t on t.run_uuid = r.run_uuid "
            "and t.key = 'sweeps.role' and t.value = 'child' where r.experiment_id = ?", exp)]
        out: dict[str, dict] = {}
        for run_id in ids:
            tags = norm(db.execute("select key, value from tags where run_uuid = ?", (run_id,)))
            params = norm(db.execute("select key, value from params where run_uuid = ?", (run_id,)))
            hist: dict[str, list] = defaultdict(list)
            for key, step, value, is_nan in db.execute(
                    "select key, step, value, is_nan from metrics where run_uuid = ? "
                    "order by key, step, timestamp", (run_id,)):
                hist[key].append((step, math.nan if is_nan else value))
            status = db.execute("select status from runs where run_uuid = ?", (run_id,)).fetchone()[0]
            h = tags["sweeps.config_hash"]
            if h in out:
                raise SystemExit(f"{path}: config hash {h} has two child runs")
            out[h] = {"status": status, "params": params, "history": dict(hist),
                      "tags": {k: v for k, v in tags.items() if k not in VOLATILE}}
        return out
    finally:
        db.close()


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def compare(old: dict[str, dict], new: dict[str, dict]) -> list[str]:
    """The differences between two stores' runs, keyed by config hash."""
    problems = [f"only in the first store: {h}" for h in sorted(old.keys() - new.keys())]
    problems += [f"only in the second store: {h}" for h in sorted(new.keys() - old.keys())]
    for h in sorted(old.keys() & new.keys()):
        a, b = old[h], new[h]
        name = a["tags"].get("mlflow.runName", h)
        for part in ("status", "params", "tags"):
            if a[part] != b[part]:
                if isinstance(a[part], dict):
                    keys = sorted(k for k in a[part].keys() | b[part].keys() if a[part].get(k) != b[part].get(k))
                    problems += [f"{name}: {part} {k}: {a[part].get(k)!r} != {b[part].get(k)!r}" for k in keys]
                else:
                    problems.append(f"{name}: {part}: {a[part]!r} != {b[part]!r}")
        for key in sorted(a["history"].keys() | b["history"].keys()):
            x, y = a["history"].get(key, []), b["history"].get(key, [])
            if len(x) != len(y) or any(s != t or not _same(u, v) for (s, u), (t, v) in zip(x, y)):
                problems.append(f"{name}: history of {key} differs")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--experiment", default="diagnostic")
    args = ap.parse_args()
    old, new = _runs(args.first, args.experiment), _runs(args.second, args.experiment)
    problems = compare(old, new)
    values = sum(len(v) for r in old.values() for v in r["history"].values())
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"same: {len(old)} runs, their params, tags and {values:,} metric values")


if __name__ == "__main__":
    main()
