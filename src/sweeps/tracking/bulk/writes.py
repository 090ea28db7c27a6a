"""Bulk writes: whole runs (row, tags, params, metrics, latest metrics, final status) many per
transaction, tags of many runs, a run that holds files, and files copied into a run's local
artifact folder - straight into MLflow's tables with sqlite3, as MLflow's ``create_run`` +
``log_batch`` + ``set_terminated`` and its local artifact repository leave them."""

from __future__ import annotations

import math
import os
import posixpath
import shutil
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence
from urllib.parse import unquote, urlparse, urlunparse

from sweeps.tracking.bulk.gate import ACTIVE, Store, marks, reading, writing
from sweeps.tracking.store import (
    clock, local_folder, metric_value, now_ms, write_texts)

RUN_NAME, USER = "mlflow.runName", "mlflow.user"  # MLflow's tags (mlflow.utils.mlflow_tags)


class InactiveExperiment(ValueError):
    """Runs cannot be created in a deleted or missing experiment (MLflow refuses it too)."""


def run_artifact_uri(location: str, run_id: str) -> str:
    """Where MLflow puts a new run's artifacts: ``<experiment location>/<run id>/artifacts``
    (mlflow.utils.uri.append_to_uri_path, query and all)."""
    parts = urlparse(location)
    if ".." in unquote(parts.query):
        raise ValueError(f"artifact location {location!r}: invalid query string")
    sub = f"{run_id}/artifacts"
    if not parts.scheme:
        return posixpath.join(location, sub) if location else sub
    prefix = ""
    if not parts.path.startswith("/"):  # urlunparse would make a relative path absolute
        prefix, parts = parts.scheme + ":", parts._replace(scheme="")
    return prefix + urlunparse(parts._replace(path=posixpath.join(parts.path, sub) if parts.path else sub))


def locations(store: Store, exp_ids: set[str], db: Any = None) -> dict[str, str]:
    """Artifact location of each experiment. Raises InactiveExperiment as MLflow's create_run."""
    def read(db: Any) -> dict[str, tuple[str, str]]:
        ids = [int(e) for e in exp_ids]
        return {str(e): (loc or "", stage) for e, loc, stage in db.execute(
            "select experiment_id, artifact_location, lifecycle_stage from experiments "
            f"where experiment_id in ({marks(ids)})", ids)}

    if db is None:
        with reading(store) as conn:
            found = read(conn)
    else:
        found = read(db)
    for exp_id in exp_ids:
        stage = found.get(exp_id, ("", ""))[1]
        if stage != ACTIVE:
            raise InactiveExperiment(f"The experiment {exp_id} must be in the 'active' state "
                                     f"to create runs; it is {stage or 'missing'}.")
    return {e: loc for e, (loc, _) in found.items()}


def _insert_runs(db: Any, runs: list[tuple]) -> None:
    db.executemany(
        "insert into runs (run_uuid, name, source_type, source_name, entry_point_name, user_id,"
        " status, start_time, end_time, deleted_time, source_version, lifecycle_stage, artifact_uri,"
        " experiment_id) values (?, ?, 'UNKNOWN', '', '', ?, ?, ?, ?, null, '', ?, ?, ?)", runs)


def write_runs(store: Store, logs: Sequence[Any], status: Optional[str]) -> None:
    """Create the runs of ``logs`` (RunLogs not yet in the store) with everything pending, in
    one transaction, as ``create_run`` + ``log_batch`` + ``set_terminated`` would leave them
    (``status`` None: left RUNNING). MLflow's ``log_batch`` builds an ORM object per value,
    which would dominate a sweep of tiny loops (benchmarks/README.md has the figures)."""
    end = now_ms() if status else None
    where = locations(store, {rl.exp_id for rl in logs})
    runs, tags, params, metrics, latest, remote = [], [], [], [], [], []
    for rl in logs:
        art = run_artifact_uri(where[rl.exp_id], rl.run_id)
        runs.append((rl.run_id, rl.name, rl.pending_tags.get(USER, "unknown"), status or "RUNNING",
                     rl.start_time, (rl.end_time or end) if end else None, ACTIVE, art, int(rl.exp_id)))
        rl.pending_tags.setdefault(RUN_NAME, rl.name)
        tags += [(k, v, rl.run_id) for k, v in rl.pending_tags.items()]
        params += [(k, v, rl.run_id) for k, v in rl.pending_params.items()]
        ts = clock()
        for key, rows in rl.pending_metrics.items():
            last = None
            for step, v in dict(rows).items():  # one value per step, the last one logged
                nan = math.isnan(v)
                row = (key, 0.0 if nan else metric_value(v), ts, step, nan, rl.run_id)
                metrics.append(row)
                if last is None or step >= last[3]:
                    last = row  # MLflow's latest value of a key is the one at its highest step
            if last is not None:
                latest.append(last)
        folder = local_folder(art)
        if folder is None:
            remote.append(rl)
        else:
            write_files(folder, rl.pending_texts)
    with writing(store) as db:
        locations(store, set(where), db)  # still active, as MLflow's create_run checks
        _insert_runs(db, runs)
        for table, rows in (("tags", tags), ("params", params)):
            db.executemany(f"insert into {table} (key, value, run_uuid) values (?, ?, ?)", rows)
        for table, rows in (("metrics", metrics), ("latest_metrics", latest)):
            db.executemany(f"insert into {table} (key, value, timestamp, step, is_nan, run_uuid)"
                           " values (?, ?, ?, ?, ?, ?)", rows)
    for rl in logs:
        rl.created = True
        rl.pending_metrics, rl.pending_params, rl.pending_tags = {}, {}, {}
        if rl not in remote:
            rl.pending_texts = {}
    for rl in remote:  # the run exists now: MLflow can upload them to its artifact location
        texts, rl.pending_texts = rl.pending_texts, {}
        write_texts(rl.uri, rl.exp_id, rl.run_id, texts, remote_ok=True)


def write_files(folder: Path, texts: Mapping[str, str]) -> None:
    for path, text in texts.items():
        out = folder / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


def set_tags(store: Store, tags_by_run: Mapping[str, Mapping[str, str]]) -> None:
    """Write (replace) tags of many runs in one transaction, values already cleaned."""
    with writing(store) as db:
        for run_id, tags in tags_by_run.items():
            db.execute(f"delete from tags where run_uuid = ? and key in ({marks(tags)})", [run_id, *tags])
        db.executemany("insert into tags (key, value, run_uuid) values (?, ?, ?)",
                       [(k, v, run_id) for run_id, tags in tags_by_run.items() for k, v in tags.items()])


def log_dir(store: Store, run_id: str, local_dir: Path, artifact_path: Optional[str]) -> bool:
    """Copy a folder's files into the run's local artifact folder (under ``artifact_path``), as
    MLflow's local artifact repository does; False when the run's artifacts are not kept in a
    folder of this machine (MLflow uploads them then)."""
    with reading(store) as db:
        row = db.execute("select artifact_uri from runs where run_uuid = ?", (run_id,)).fetchone()
    folder = local_folder(row[0] or "") if row else None
    if folder is None:
        return False
    if artifact_path:
        folder = folder / os.path.normpath(artifact_path)
    shutil.copytree(local_dir, folder, dirs_exist_ok=True)
    return True
