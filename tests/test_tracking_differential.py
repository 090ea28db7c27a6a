"""The bulk path is an optimisation, MLflow's public API the reference: the same sweep (and the
same relabelling, which writes tags afterwards) recorded both ways leaves every table of MLflow's
schema the same, row by row, once run ids, timestamps and the output folders are normalised."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow

SWEEP = ["-m", "optimizer=sgd,adam", "optimizer.lr=0.01,1.0", "train.zero_grad=true,false",
         "train.epochs=60", "sweep.plots=false"]
TIME_COLUMNS = re.compile(r"(^|_)(time|timestamp|creation_time|last_update_time|start_time|end_time)$")
VOLATILE_TAGS = {"sweeps.pid"}  # the process that wrote the run
WALL_TIME = re.compile(r"\b\d+(?:\.\d+)? s\b")  # "8 jobs in 0.6 s", "a batched program of 0.04 s"


def _record(root: Path, plain: bool) -> Path:
    env = {"SWEEPS_PLAIN_LOGGING": "1"} if plain else {}
    run_cli([*SWEEP, f"paths.output_dir={root}", f"hydra.sweep.dir={root}/sweep"], root.parent, env=env)
    run_cli(["--output-root", str(root), "--relabel", "--no-plots", "--show", "0"], root.parent,
            env=env, module="sweeps.analyze")
    return root / "mlflow.db"


def _tables(store: Path, root: Path) -> dict[str, list[tuple]]:
    """Every table's rows, sorted, with run ids replaced by run names, time columns blanked and
    the output folder written as <root>."""
    db = sqlite3.connect(store)
    try:
        ids = dict(db.execute("select run_uuid, name from runs"))
        assert len(set(ids.values())) == len(ids), "run names must tell runs apart"
        out = {}
        for (table,) in db.execute("select name from sqlite_master where type = 'table'"):
            cursor = db.execute(f'select * from "{table}"')
            columns = [c[0] for c in cursor.description]
            rows = []
            for row in cursor.fetchall():
                values = dict(zip(columns, row))
                if values.get("key") in VOLATILE_TAGS:
                    values["value"] = "<volatile>"
                for col, v in values.items():
                    if TIME_COLUMNS.search(col) and isinstance(v, (int, float)):
                        values[col] = "<time>"
                    elif isinstance(v, str):
                        for run_id, name in ids.items():
                            v = v.replace(run_id, f"<run {name}>")
                        v = v.replace(str(root), "<root>").replace(str(root.parent), "<cwd>")
                        values[col] = WALL_TIME.sub("<seconds> s", v)
                rows.append(tuple(sorted(values.items(), key=lambda kv: kv[0])))
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        db.close()


def _artifacts(root: Path) -> dict[str, str]:
    """Every artifact file's text, by path, run ids replaced by run names."""
    db = sqlite3.connect(root / "mlflow.db")
    ids = dict(db.execute("select run_uuid, name from runs"))
    db.close()
    files = {}
    for p in sorted((root / "mlartifacts").rglob("*")):
        if p.is_file():
            rel = str(p.relative_to(root))
            text = p.read_text(errors="replace").replace(str(root), "<root>").replace(str(root.parent), "<cwd>")
            for run_id, name in ids.items():
                rel, text = rel.replace(run_id, f"<run {name}>"), text.replace(run_id, f"<run {name}>")
            text = WALL_TIME.sub("<seconds> s", text)
            files[rel] = "\n".join(sorted(text.splitlines()))  # a table's rows in any order
    return files


def test_bulk_and_api_paths_leave_the_same_tables(tmp_path):
    bulk_root, api_root = tmp_path / "bulk" / "out", tmp_path / "api" / "out"
    bulk_root.parent.mkdir()
    api_root.parent.mkdir()
    bulk = _tables(_record(bulk_root, plain=False), bulk_root)
    api = _tables(_record(api_root, plain=True), api_root)
    assert bulk.keys() == api.keys()
    assert len(bulk["runs"]) == 1 + 8 and len(bulk["metrics"]) > 8 * 60 * 4
    assert any(dict(r)["key"] == "symptom" for r in bulk["tags"])
    for table in sorted(bulk):
        assert bulk[table] == api[table], f"table {table} differs between the bulk and the API path"
    a, b = _artifacts(bulk_root), _artifacts(api_root)
    assert len(a) >= 8 and a.keys() == b.keys()
    for path in a:
        assert a[path] == b[path], path
