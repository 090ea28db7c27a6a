"""The writes around a sweep's runs, in bulk: its experiment (found, or created as MLflow's
``create_experiment`` creates one), a run created RUNNING or FINISHED (``create_run``), a run's
end (``set_terminated``), metrics of one step (``log_batch``) and the experiment's tags
(``set_experiment_tag``), straight into MLflow's tables with sqlite3. With these a sweep into a
local store of a tested schema never imports MLflow (its import and the store's opening were a
third of a small sweep's wall time)."""

from __future__ import annotations

import math
import os
import socket
import uuid
from typing import Mapping, Optional, Sequence

from sweeps.tracking.bulk.gate import ACTIVE, WORKSPACE, Store, marks, reading, writing
from sweeps.tracking.bulk.writes import (
    RUN_NAME, USER, _insert_runs, locations, run_artifact_uri, write_files)
from sweeps.tracking.store import TAG_HOST, TAG_PID, local_folder, metric_value, now_ms


def experiment_id(store: Store, name: str, location: str) -> Optional[str]:
    """The id of the active experiment ``name``, created with its artifacts at ``location`` when
    there is none; None when a deleted one has that name (MLflow restores it)."""
    with writing(store) as db:
        row = db.execute("select experiment_id, lifecycle_stage from experiments where name = ? "
                         "and workspace = ?", (name, WORKSPACE)).fetchone()
        if row is not None:
            return str(row[0]) if row[1] == ACTIVE else None
        now = now_ms()
        cur = db.execute("insert into experiments (name, artifact_location, lifecycle_stage, "
                         "creation_time, last_update_time, workspace) values (?, ?, ?, ?, ?, ?)",
                         (name, location, ACTIVE, now, now, WORKSPACE))
        return str(cur.lastrowid)


def create_run(store: Store, exp_id: str, name: str, tags: Mapping[str, str], status: str) -> str:
    """A new run of ``status`` (RUNNING: not ended) holding ``tags`` plus this host and process
    (as a sweep's parent run has them), as ``create_run`` (+ ``set_terminated``) leave one."""
    run_id = uuid.uuid4().hex
    tags = {TAG_HOST: socket.gethostname(), TAG_PID: str(os.getpid()), **tags, RUN_NAME: name}
    with writing(store) as db:
        location = locations(store, {exp_id}, db)[exp_id]
        start = now_ms()
        end = max(now_ms(), start) if status != "RUNNING" else None
        _insert_runs(db, [(run_id, name, tags.get(USER, "unknown"), status, start, end, ACTIVE,
                           run_artifact_uri(location, run_id), int(exp_id))])
        db.executemany("insert into tags (key, value, run_uuid) values (?, ?, ?)",
                       [(k, str(v), run_id) for k, v in tags.items()])
    return run_id


def terminate(store: Store, run_id: str, status: str) -> bool:
    """End a run with ``status`` now, as ``set_terminated``; False: no such active run."""
    with writing(store) as db:
        cur = db.execute("update runs set status = ?, end_time = ? where run_uuid = ? and "
                         "lifecycle_stage = ?", (status, now_ms(), run_id, ACTIVE))
        return cur.rowcount == 1


def log_metrics(store: Store, run_id: str, metrics: Mapping[str, float], timestamp: int, step: int = 0) -> None:
    """Metrics of one step on an existing run."""
    append(store, run_id, {k: [(step, v)] for k, v in metrics.items()}, {}, {}, {}, timestamp)


def append(store: Store, run_id: str, metrics: Mapping[str, Sequence[tuple[int, float]]],
           params: Mapping[str, str], tags: Mapping[str, str], texts: Mapping[str, str],
           timestamp: int) -> dict[str, str]:
    """Add to an existing run, as ``log_batch`` does: metrics ((step, value) rows per key; each
    key's latest value where a row is later, ordered by step, timestamp, value), params, tags
    (replaced), and text files into its local artifact folder. Returns the texts it could not
    write (artifacts kept elsewhere: MLflow uploads them)."""
    rows = [(key, 0.0 if math.isnan(v) else metric_value(v), timestamp, step, math.isnan(v), run_id)
            for key, pairs in metrics.items() for step, v in dict(pairs).items()]  # last per step
    with writing(store) as db:
        db.executemany("insert into metrics (key, value, timestamp, step, is_nan, run_uuid) "
                       "values (?, ?, ?, ?, ?, ?)", rows)
        for row in rows:
            old = db.execute("select step, timestamp, value from latest_metrics where key = ? and "
                             "run_uuid = ?", (row[0], run_id)).fetchone()
            if old is None or (row[3], row[2], row[1]) > tuple(old):
                db.execute("insert or replace into latest_metrics (key, value, timestamp, step, "
                           "is_nan, run_uuid) values (?, ?, ?, ?, ?, ?)", row)
        db.executemany("insert or ignore into params (key, value, run_uuid) values (?, ?, ?)",
                       [(k, v, run_id) for k, v in params.items()])
        if tags:
            db.execute(f"delete from tags where run_uuid = ? and key in ({marks(tags)})", [run_id, *tags])
            db.executemany("insert into tags (key, value, run_uuid) values (?, ?, ?)",
                           [(k, v, run_id) for k, v in tags.items()])
        row = db.execute("select artifact_uri from runs where run_uuid = ?", (run_id,)).fetchone()
    folder = local_folder(row[0] or "") if row and texts else None
    if folder is None:
        return dict(texts)
    write_files(folder, texts)
    return {}


def experiment_tags(store: Store, exp_id: str) -> dict[str, str]:
    with reading(store) as db:
        return dict(db.execute("select key, value from experiment_tags where experiment_id = ?",
                               (int(exp_id),)).fetchall())


def set_experiment_tags(store: Store, exp_id: str, tags: Mapping[str, str]) -> None:
    """Write (replace) tags of an active experiment, values already cleaned."""
    with writing(store) as db:
        db.executemany("insert or replace into experiment_tags (key, value, experiment_id) "
                       "values (?, ?, ?)", [(k, v, int(exp_id)) for k, v in tags.items()])


def finished_run(store: Store, exp_id: str, name: str, tags: Mapping[str, str]) -> str:
    """A new FINISHED run holding only ``tags`` (an analysis run that holds files)."""
    return create_run(store, exp_id, name, tags, "FINISHED")
