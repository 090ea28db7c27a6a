"""Bulk reads: experiments, runs (tags, params, latest metrics), a sweep's children and metric
histories straight from MLflow's tables with sqlite3, a query per table and chunk of runs where
MLflow's search builds every run's entities and its client reads one run and key per call."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from sweeps.tracking.bulk.gate import ACTIVE, CHUNK, WORKSPACE, Store, marks, reading
from sweeps.tracking.store import TAG_ERROR, TAG_PARENT, TAG_ROLE, ChildRow, chunks, per_step


@dataclass
class RunInfo:
    run_id: str
    run_name: str
    experiment_id: str
    status: str
    start_time: Optional[int]
    end_time: Optional[int]
    lifecycle_stage: str
    artifact_uri: str
    user_id: str


@dataclass
class RunData:
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]  # the latest value of each key, as MLflow's Run.data.metrics


@dataclass
class Run:
    """What this project reads of MLflow's Run: ``info`` and ``data`` with the same names."""

    info: RunInfo
    data: RunData


def find_experiment(store: Store, name: Optional[str]) -> Optional[tuple[str, str]]:
    """(id, name) of experiment ``name`` (as MLflow's get_experiment_by_name: deleted ones too);
    with no name, of the active experiment holding the most recently started active sweep
    parent run. None when there is none."""
    with reading(store) as db:
        if name:
            row = db.execute("select experiment_id, name from experiments where name = ? and workspace = ?",
                             (name, WORKSPACE)).fetchone()
        else:
            row = db.execute("""
                select e.experiment_id, e.name from runs r
                join experiments e on e.experiment_id = r.experiment_id
                join tags t on t.run_uuid = r.run_uuid and t.key = ? and t.value = 'parent'
                where r.lifecycle_stage = ? and e.lifecycle_stage = ? and e.workspace = ?
                order by r.start_time desc, r.run_uuid limit 1""",
                             (TAG_ROLE, ACTIVE, ACTIVE, WORKSPACE)).fetchone()
    return (str(row[0]), row[1]) if row else None


def experiment_names(store: Store) -> list[str]:
    """The names of the store's active experiments, in creation order."""
    with reading(store) as db:
        rows = db.execute("select name from experiments where lifecycle_stage = ? and "
                          "workspace = ? order by experiment_id", (ACTIVE, WORKSPACE)).fetchall()
    return [r[0] for r in rows]


def experiment(store: Store, exp_id: str) -> Optional[tuple[str, str]]:
    """(artifact_location, lifecycle_stage) of an experiment, None when there is none."""
    with reading(store) as db:
        row = db.execute("select artifact_location, lifecycle_stage from experiments where experiment_id = ?",
                         (int(exp_id),)).fetchone()
    return (row[0] or "", row[1]) if row else None


def runs(store: Store, exp_id: str, status: Optional[str] = None, tag: Optional[tuple[str, str]] = None,
         run_ids: Optional[list[str]] = None) -> list[Run]:
    """The active runs of an experiment, latest first (as MLflow's search orders them), with
    their tags, params and latest metrics; only those with ``status``, with tag ``(key, value)``
    or among ``run_ids`` when given."""
    query = ("select r.run_uuid, r.name, r.experiment_id, r.status, r.start_time, r.end_time,"
             " r.lifecycle_stage, r.artifact_uri, r.user_id from runs r"
             " where r.experiment_id = ? and r.lifecycle_stage = ?")
    args: list[Any] = [int(exp_id), ACTIVE]
    if status:
        query, args = query + " and r.status = ?", [*args, status]
    if tag:
        query += " and exists (select 1 from tags t where t.run_uuid = r.run_uuid and t.key = ? and t.value = ?)"
        args += list(tag)
    if run_ids is not None:
        query, args = query + f" and r.run_uuid in ({marks(run_ids)})", [*args, *run_ids]
    found: dict[str, Run] = {}
    with reading(store) as db:
        for rid, name, exp, st, start, end, stage, art, user in db.execute(
                query + " order by r.start_time desc, r.run_uuid", args):
            found[rid] = Run(RunInfo(rid, name or "", str(exp), st, start, end, stage, art or "", user or ""),
                             RunData({}, {}, {}))
        for chunk in chunks(list(found), CHUNK):
            for table, attr in (("tags", "tags"), ("params", "params")):
                for rid, key, value in db.execute(
                        f"select t.run_uuid, t.key, t.value from {table} t where t.run_uuid in ({marks(chunk)})", chunk):
                    getattr(found[rid].data, attr)[key] = value
            for rid, key, value, is_nan in db.execute(
                    "select m.run_uuid, m.key, m.value, m.is_nan from latest_metrics m "
                    f"where m.run_uuid in ({marks(chunk)})", chunk):
                found[rid].data.metrics[key] = math.nan if is_nan else value
    return list(found.values())


def children(store: Store, exp_id: str, parent_id: str) -> list[ChildRow]:
    """The active child runs of a sweep's parent, in one query."""
    query = """
        select r.run_uuid, r.name, r.status,
               (select t.value from tags t where t.run_uuid = r.run_uuid and t.key = 'symptom'),
               (select t.value from tags t where t.run_uuid = r.run_uuid and t.key = ?),
               m.value, m.is_nan
        from runs r
        join tags p on p.run_uuid = r.run_uuid and p.key = ? and p.value = ?
        left join latest_metrics m on m.run_uuid = r.run_uuid and m.key = 'val_loss'
        where r.experiment_id = ? and r.lifecycle_stage = ?"""
    with reading(store) as db:
        rows = db.execute(query, (TAG_ERROR, TAG_PARENT, parent_id, int(exp_id), ACTIVE)).fetchall()
    return [ChildRow(run_id, name or "", status, symptom or "", error or "",
                     math.nan if value is None or is_nan else float(value))
            for run_id, name, status, symptom, error, value, is_nan in rows]


def histories(store: Store, run_ids: list[str], keys: list[str]) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """Per-(run, key) (step, value) lists in step order (store.per_step: the last value logged
    per step; values logged without steps in the order logged): one query per chunk of runs."""
    found: dict[tuple[str, str], list[tuple[int, float]]] = {}
    with reading(store) as db:
        for chunk in chunks(list(run_ids), CHUNK):
            # in step order, and per step in logging order
            rows = db.execute(
                "select m.run_uuid, m.key, m.step, m.value, m.is_nan from metrics m "
                f"where m.run_uuid in ({marks(chunk)}) and m.key in ({marks(keys)}) "
                "order by m.run_uuid, m.key, m.step, m.timestamp, m.rowid", [*chunk, *keys])
            for run_id, key, step, value, is_nan in rows:
                found.setdefault((run_id, key), []).append((step, math.nan if is_nan else value))
    return {k: per_step(rows) for k, rows in found.items()}
