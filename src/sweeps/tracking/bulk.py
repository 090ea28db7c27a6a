"""The bulk path: runs written and read straight through MLflow's own table models, many per
transaction, where MLflow's API would make a request or an ORM object per value. An optimisation
only: used on a database store whose schema (alembic revision) is one this project was tested
against, and otherwise MLflow's public API does the same work (one log line says so).
tests/test_tracking_differential.py records the same sweep both ways and compares every table."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional, Sequence

from sweeps.tracking.store import (
    TAG_ERROR, TAG_PARENT, ChildRow, artifact_location, chunks, client, clock, metric_value, now_ms,
    write_texts)

log = logging.getLogger(__name__)

# Alembic revisions of MLflow's schema that the bulk path was tested against (CI: mlflow 3.17.2).
TESTED_REVISIONS = frozenset({"dc11669786a5"})


def store_for(uri: str) -> Any:
    """MLflow's SQLAlchemy store behind ``uri`` when the bulk path may write it, else None (a
    tracking server, another store, an untested schema, or SWEEPS_PLAIN_LOGGING=1)."""
    if os.environ.get("SWEEPS_PLAIN_LOGGING"):
        return None
    return _tested_store(uri)


@lru_cache(maxsize=8)
def _tested_store(uri: str) -> Any:
    store = client(uri)._tracking_client.store
    if not hasattr(store, "ManagedSessionMaker"):
        return None
    revision = schema_revision(store)
    if revision not in TESTED_REVISIONS:
        log.info("store schema %s is not one sweeps was tested with: writing through MLflow's API",
                 revision)
        return None
    return store


def schema_revision(store: Any) -> Optional[str]:
    """The alembic revision of a database store's schema."""
    from sqlalchemy import text

    with store.ManagedSessionMaker() as session:
        return session.execute(text("select version_num from alembic_version")).scalar()


def write_runs(store: Any, logs: Sequence[Any], status: Optional[str]) -> None:
    """Create the runs of ``logs`` (not yet in the store) with everything pending, in one
    transaction through MLflow's own table models, as ``create_run`` + ``log_batch`` +
    ``set_terminated`` would leave them (``status`` None: left RUNNING). MLflow's
    ``log_batch`` builds an ORM object per value, which would dominate a sweep of tiny
    loops (benchmarks/README.md has the figures)."""
    from mlflow.entities import LifecycleStage, RunStatus, SourceType
    from mlflow.exceptions import MlflowException
    from mlflow.store.tracking.dbmodels.models import (
        SqlExperiment, SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag)
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, MLFLOW_USER
    from mlflow.utils.uri import append_to_uri_path
    from sqlalchemy import insert, select

    end = now_ms() if status else None
    runs, tags, params, metrics, latest, remote = [], [], [], [], [], []
    for rl in logs:
        exp_id = rl.exp_id
        location = artifact_location(rl.uri, exp_id)
        runs.append({
            "run_uuid": rl.run_id, "name": rl.name, "artifact_uri": append_to_uri_path(location, rl.run_id, "artifacts"),
            "experiment_id": int(exp_id), "source_type": SourceType.to_string(SourceType.UNKNOWN),
            "source_name": "", "entry_point_name": "", "user_id": rl.pending_tags.get(MLFLOW_USER, "unknown"),
            "status": status or RunStatus.to_string(RunStatus.RUNNING), "start_time": rl.start_time,
            "end_time": (rl.end_time or end) if end else None, "deleted_time": None,
            "source_version": "", "lifecycle_stage": LifecycleStage.ACTIVE,
        })
        rl.pending_tags.setdefault(MLFLOW_RUN_NAME, rl.name)
        tags += [{"run_uuid": rl.run_id, "key": k, "value": v} for k, v in rl.pending_tags.items()]
        params += [{"run_uuid": rl.run_id, "key": k, "value": v} for k, v in rl.pending_params.items()]
        ts = clock()
        for key, rows in rl.pending_metrics.items():
            by_step = dict(rows)  # one value per step, the last one logged
            last = None
            for step, v in by_step.items():
                nan = math.isnan(v)
                row = {"run_uuid": rl.run_id, "key": key, "value": 0.0 if nan else metric_value(v),
                       "timestamp": ts, "step": step, "is_nan": nan}
                metrics.append(row)
                if last is None or step >= last["step"]:
                    last = row  # MLflow's latest value of a key is the one at its highest step
            if last is not None:
                latest.append(last)
        if rl.pending_metrics:
            rl.any_sent = True
        if not write_texts(rl.uri, exp_id, rl.run_id, rl.pending_texts, remote_ok=False):
            remote.append(rl)
    with store.ManagedSessionMaker(read_only=False) as session:
        exps = SqlExperiment.__table__
        for exp_id in {rl.exp_id for rl in logs}:  # what MLflow's create_run checks
            stage = session.execute(select(exps.c.lifecycle_stage).where(
                exps.c.experiment_id == int(exp_id))).scalar()
            if stage != LifecycleStage.ACTIVE:
                raise MlflowException(f"The experiment {exp_id} must be in the 'active' state "
                                      f"to create runs; it is {stage or 'missing'}.")
        session.execute(insert(SqlRun.__table__), runs)
        for table, rows in ((SqlTag, tags), (SqlParam, params), (SqlMetric, metrics), (SqlLatestMetric, latest)):
            if rows:
                session.execute(insert(table.__table__), rows)
    for rl in logs:
        rl.created = True
        rl.pending_metrics, rl.pending_params, rl.pending_tags = {}, {}, {}
        if rl not in remote:
            rl.pending_texts = {}
    for rl in remote:  # the run exists now: the client can find its artifact location
        texts, rl.pending_texts = rl.pending_texts, {}
        write_texts(rl.uri, rl.exp_id, rl.run_id, texts, remote_ok=True)




def children(store: Any, exp_id: str, parent_id: str) -> list[ChildRow]:
    from mlflow.entities import LifecycleStage
    from sqlalchemy import text

    query = text("""
        select r.run_uuid, r.name, r.status,
               (select t.value from tags t where t.run_uuid = r.run_uuid and t.key = 'symptom'),
               (select t.value from tags t where t.run_uuid = r.run_uuid and t.key = :error),
               m.value, m.is_nan
        from runs r
        join tags p on p.run_uuid = r.run_uuid and p.key = :parent_key and p.value = :parent
        left join latest_metrics m on m.run_uuid = r.run_uuid and m.key = 'val_loss'
        where r.experiment_id = :exp and r.lifecycle_stage = :active
    """)
    with store.ManagedSessionMaker() as session:
        rows = session.execute(query, {"error": TAG_ERROR, "parent_key": TAG_PARENT, "parent": parent_id,
                                       "exp": int(exp_id), "active": LifecycleStage.ACTIVE}).all()
    return [ChildRow(run_id, name or "", status, symptom or "", error or "",
                     math.nan if value is None or is_nan else float(value))
            for run_id, name, status, symptom, error, value, is_nan in rows]




@dataclass
class _RunInfo:
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
class _RunData:
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]  # the latest value of each key, as MLflow's Run.data.metrics


@dataclass
class _Run:
    info: _RunInfo
    data: _RunData


def runs(store: Any, exp_id: str, status: Optional[str]) -> list[_Run]:
    """The runs of an experiment as Run-shaped objects (info, data.tags/params/metrics), from
    MLflow's tables: a query for the runs and one per table and chunk of 500 runs."""
    from mlflow.entities import LifecycleStage
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlParam, SqlRun, SqlTag
    from sqlalchemy import select

    r = SqlRun.__table__
    query = select(r.c.run_uuid, r.c.name, r.c.experiment_id, r.c.status, r.c.start_time, r.c.end_time,
                   r.c.lifecycle_stage, r.c.artifact_uri, r.c.user_id).where(
        r.c.experiment_id == int(exp_id), r.c.lifecycle_stage == LifecycleStage.ACTIVE)
    if status:
        query = query.where(r.c.status == status)
    runs: dict[str, _Run] = {}
    with store.ManagedSessionMaker() as session:
        for run_id, name, exp, st, start, end, stage, art, user in session.execute(query.order_by(
                r.c.start_time.desc(), r.c.run_uuid)).all():
            runs[run_id] = _Run(_RunInfo(run_id, name or "", str(exp), st, start, end, stage, art or "", user or ""),
                                _RunData({}, {}, {}))
        for chunk in chunks(list(runs), 500):
            for table, attr in ((SqlTag.__table__, "tags"), (SqlParam.__table__, "params")):
                for run_id, key, value in session.execute(select(table.c.run_uuid, table.c.key, table.c.value)
                                                          .where(table.c.run_uuid.in_(chunk))).all():
                    getattr(runs[run_id].data, attr)[key] = value
            m = SqlLatestMetric.__table__
            for run_id, key, value, is_nan in session.execute(select(m.c.run_uuid, m.c.key, m.c.value, m.c.is_nan)
                                                              .where(m.c.run_uuid.in_(chunk))).all():
                runs[run_id].data.metrics[key] = math.nan if is_nan else value
    return list(runs.values())


def histories(store: Any, run_ids: list[str], keys: list[str]) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """Per-(run, key) histories, one plain query per chunk of runs over MLflow's metrics table
    (the client reads one run and key per call, ~3 ms each)."""
    from mlflow.store.tracking.dbmodels.models import SqlMetric
    from sqlalchemy import select

    t = SqlMetric.__table__
    found: dict[tuple[str, str], dict[int, float]] = {}
    with store.ManagedSessionMaker() as session:
        for chunk in chunks(list(run_ids), 500):
            # in step order, and per step in logging order: the last value logged wins
            rows = session.execute(
                select(t.c.run_uuid, t.c.key, t.c.step, t.c.value, t.c.is_nan)
                .where(t.c.run_uuid.in_(chunk), t.c.key.in_(keys))
                .order_by(t.c.run_uuid, t.c.key, t.c.step, t.c.timestamp)
            ).all()
            last, slot = None, {}
            for run_id, key, step, value, is_nan in rows:
                if (run_id, key) != last:
                    last = (run_id, key)
                    slot = found.setdefault(last, {})
                slot[step] = math.nan if is_nan else value
    return {k: list(slot.items()) for k, slot in found.items()}


def set_tags(store: Any, tags_by_run: dict[str, dict[str, str]]) -> None:
    """Write (replace) tags of many runs in one transaction, values already cleaned."""
    from mlflow.store.tracking.dbmodels.models import SqlTag
    from sqlalchemy import delete, insert

    t = SqlTag.__table__
    with store.ManagedSessionMaker(read_only=False) as session:
        for run_id, tags in tags_by_run.items():
            session.execute(delete(t).where(t.c.run_uuid == run_id, t.c.key.in_(list(tags))))
        session.execute(insert(t), [{"run_uuid": run_id, "key": k, "value": v}
                                    for run_id, tags in tags_by_run.items() for k, v in tags.items()])
