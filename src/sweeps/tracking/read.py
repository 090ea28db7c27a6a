"""Reading runs back: the children of a sweep, the finished configs to resume, stale runs to
repair, whole experiments and metric histories for the analysis; what the analysis writes
afterwards (tags, a run to hold its files, the files). Through MLflow's public API, or in bulk
(``sweeps.tracking.bulk``, MLflow not imported) on a local SQLite store of a tested schema."""

from __future__ import annotations

import logging
import math
import os
import socket
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from sweeps.tracking import bulk
from sweeps.tracking.runs import SERVER_CONCURRENCY, end_parent, set_status, start_parent
from sweeps.tracking.server import histories_bulk, unreachable
from sweeps.tracking.store import (
    MAX_PARAMS_TAGS_PER_BATCH, MAX_TAG_VALUE, TAG_ERROR, TAG_HASH, TAG_HOST, TAG_PARENT, TAG_PID,
    TAG_ROLE, ChildRow, chunks, clean, client, per_step)

log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def repair_stale(uri: str, exp_id: str) -> int:
    """Mark KILLED the runs left RUNNING by a process of this host that no longer exists (a
    ``kill -9``, a power cut). Runs of other hosts, and of live processes, are left alone."""
    host = socket.gethostname()
    stale = [
        r for r in search_all(uri, exp_id, status="RUNNING")
        if r.data.tags.get(TAG_HOST) == host and not _alive(int(r.data.tags.get(TAG_PID, "0") or 0))
    ]
    for r in stale:
        set_status(uri, r.info.run_id, "KILLED")
    return len(stale)


def finished_configs(uri: str, exp_id: str) -> dict[str, dict[str, Any]]:
    """config hash -> {run_id, val_loss} of every FINISHED training run of the experiment."""
    done: dict[str, dict[str, Any]] = {}
    for r in search_all(uri, exp_id, status="FINISHED"):
        tags = r.data.tags
        if tags.get(TAG_ROLE) in ("child", "single") and TAG_HASH in tags and "sweeps.fixes" not in tags:
            val = r.data.metrics.get("val_loss", math.nan)
            done[tags[TAG_HASH]] = {"run_id": r.info.run_id, "val_loss": val if math.isfinite(val) else None}
    return done




def children(uri: str, exp_id: str, parent_id: str) -> list[ChildRow]:
    """All child runs of a parent: one query in bulk (MLflow's search loads every param and tag
    of every run, one request per run), else one search call per page of 1000."""
    store = bulk.store_for(uri)
    if store is not None:
        return bulk.children(store, exp_id, parent_id)
    c = client(uri)
    rows: list[ChildRow] = []
    token = None
    while True:
        page = c.search_runs(
            [exp_id], filter_string=f"tags.`{TAG_PARENT}` = '{parent_id}'",
            max_results=1000, page_token=token,
        )
        for r in page:
            rows.append(ChildRow(
                r.info.run_id, r.info.run_name or "", r.info.status,
                r.data.tags.get("symptom", ""), r.data.tags.get(TAG_ERROR, ""),
                r.data.metrics.get("val_loss", math.nan),
            ))
        token = page.token
        if not token:
            return rows




def find_experiment(uri: str, name: Optional[str]) -> Optional[tuple[str, str]]:
    """(id, name) of experiment ``name``; with no name, of the experiment holding the most
    recently started sweep (parent run). None when there is none."""
    store = bulk.store_for(uri)
    if store is not None:
        return bulk.find_experiment(store, name)
    c = client(uri)
    if name:
        exp = c.get_experiment_by_name(name)
        return (exp.experiment_id, exp.name) if exp else None
    exps = c.search_experiments(max_results=1000)
    if not exps:
        return None
    latest = c.search_runs(
        [e.experiment_id for e in exps], filter_string=f"tags.`{TAG_ROLE}` = 'parent'",
        order_by=["attributes.start_time DESC"], max_results=1,
    )
    if latest:
        exp_id = latest[0].info.experiment_id
        return exp_id, next(e.name for e in exps if e.experiment_id == exp_id)
    return None


def experiment_names(uri: str) -> list[str]:
    """The names of the store's active experiments, in creation order."""
    store = bulk.store_for(uri)
    if store is not None:
        return bulk.experiment_names(store)
    return [e.name for e in client(uri).search_experiments(max_results=1000,
                                                           order_by=["creation_time ASC"])]


def search_all(uri: str, exp_id: str, filter_string: str = "", status: Optional[str] = None) -> list[Any]:
    """Every active run of an experiment (with ``status``, only those): MLflow's Run objects
    through its search, following pages of 1000; without a filter string, in bulk where it may
    (the same contents, Run-shaped: MLflow's search builds every run's entities)."""
    store = bulk.store_for(uri) if not filter_string else None
    if store is not None:
        return bulk.runs(store, exp_id, status)
    if status:
        filter_string = " and ".join(f for f in (filter_string, f"attributes.status = '{status}'") if f)
    c = client(uri)
    out: list[Any] = []
    token = None
    while True:
        page = c.search_runs([exp_id], filter_string=filter_string, max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out



def histories(uri: str, run_ids: list[str], keys: Iterable[str]) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """Per-(run, key) metric histories as sorted (step, value) lists, the last value logged per
    step: in bulk where it may, else through the client's reads."""
    keys = list(keys)
    store = bulk.store_for(uri)
    if store is not None:
        return bulk.histories(store, run_ids, keys)
    c = client(uri)
    out: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for pair, history in _client_histories(c, uri, run_ids, keys):
        if history:  # a run without the key is left out, as in bulk
            rows = sorted(history, key=lambda m: (m[0], m[1]))  # stable: logged order within a ms
            out[pair] = per_step([(step, value) for step, _, value in rows])
    return out


def _client_histories(c: Any, uri: str, run_ids: list[str], keys: list[str]) -> Iterable[tuple[tuple[str, str], list[tuple[int, int, float]]]]:
    """((run, key), [(step, timestamp, value)]) through MLflow's client ``c``: from a tracking
    server a request per key and 100 runs (server.histories_bulk); elsewhere, or where the
    server does not answer that route, one per run and key, several side by side."""
    if uri.lower().startswith(("http://", "https://")):
        rows = _from_server_in_bulk(c, run_ids, keys)
        if rows is not None:
            yield from rows
            return
    from concurrent.futures import ThreadPoolExecutor

    pairs = [(run_id, key) for run_id in run_ids for key in keys]
    with ThreadPoolExecutor(max_workers=SERVER_CONCURRENCY) as pool:
        answers = list(pool.map(lambda p: c.get_metric_history(*p), pairs))
    for pair, history in zip(pairs, answers):
        yield pair, [(m.step, m.timestamp, m.value) for m in history]


def _from_server_in_bulk(c: Any, run_ids: list[str], keys: list[str]) -> Optional[list]:
    """server.histories_bulk's answer as _client_histories' rows; None where it is refused."""
    from mlflow.exceptions import MlflowException

    try:
        answer = histories_bulk(c, run_ids, keys, SERVER_CONCURRENCY)
        return [(pair, [(int(m["step"]), int(m["timestamp"]), float(m["value"])) for m in ms])
                for pair, ms in answer.items()]
    except (MlflowException, ValueError, KeyError, TypeError) as err:
        if unreachable(err):
            raise
        log.info("bulk history reads refused (%s); reading run by run", err)
        return None


def set_tags(uri: str, tags_by_run: Mapping[str, Mapping[str, Any]]) -> None:
    """Write tags to many runs: one transaction in bulk, else a log_batch per run."""
    cleaned = {run_id: {k: clean(v, MAX_TAG_VALUE) for k, v in tags.items()}
               for run_id, tags in tags_by_run.items() if tags}
    if not cleaned:
        return
    store = bulk.store_for(uri)
    if store is not None:
        bulk.set_tags(store, cleaned)
        return
    from mlflow.entities import RunTag

    for run_id, tags in cleaned.items():
        items = [RunTag(k, v) for k, v in tags.items()]
        for chunk in chunks(items, MAX_PARAMS_TAGS_PER_BATCH):
            client(uri).log_batch(run_id, tags=chunk, synchronous=True)


def log_dir(uri: str, run_id: str, local_dir: Path, artifact_path: Optional[str] = None) -> None:
    """Upload a folder's files as artifacts of a run (in bulk: copied into its local folder)."""
    store = bulk.store_for(uri)
    if store is not None and bulk.log_dir(store, run_id, Path(local_dir), artifact_path):
        return
    client(uri).log_artifacts(run_id, str(local_dir), artifact_path)


def runs_tagged(uri: str, exp_id: str, key: str, value: str) -> list[Any]:
    """The active runs of an experiment whose tag ``key`` is ``value`` (Run-shaped), latest first."""
    store = bulk.store_for(uri)
    if store is not None:
        return bulk.runs(store, exp_id, tag=(key, value))
    return search_all(uri, exp_id, f"tags.`{key}` = '{value}'")


def run_of(uri: str, exp_id: str, run_id: str) -> Optional[Any]:
    """One active run of an experiment (Run-shaped), or None."""
    store = bulk.store_for(uri)
    found = (bulk.runs(store, exp_id, run_ids=[run_id]) if store is not None
             else search_all(uri, exp_id, f"attributes.run_id = '{run_id}'"))
    return found[0] if found else None


def finished_run(uri: str, exp_id: str, name: str, tags: Mapping[str, Any]) -> str:
    """A new FINISHED run named ``name`` holding only ``tags`` (and this host and process, as a
    sweep's parent run): e.g. one to hold an analysis's files. Returns its id."""
    tags = {k: str(v) for k, v in tags.items()}
    store = bulk.store_for(uri)
    if store is not None:
        return bulk.finished_run(store, exp_id, name, tags)
    run_id = start_parent(uri, exp_id, name, tags)
    end_parent(uri, run_id, "FINISHED")
    return run_id
