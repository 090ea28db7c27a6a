"""Writing runs: a RunLog queues a run's params, tags, metrics and texts and writes them through
MLflow's public API (the reference path, and the only one for a tracking server or another
database), or on a local SQLite store of a tested schema in one transaction
(``sweeps.tracking.bulk``)."""

from __future__ import annotations

import os
import socket
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

from sweeps import stopping
from sweeps.secrets import scrub
from sweeps.tracking import bulk
from sweeps.tracking.store import (
    MAX_METRICS_PER_BATCH, MAX_PARAM_VALUE, MAX_PARAMS_TAGS_PER_BATCH, MAX_TAG_VALUE, PRIVATE_KEYS,
    TAG_ERROR, TAG_HOST, TAG_PID, clean, client, clock, metric_value, now_ms, plain_experiment_id,
    plain_set_status, remember_location, seed_sqlite, write_texts)
from sweeps.tracking.server import StoreUnreachable, store_unreachable, unreachable


@dataclass
class RunLog:
    """A run being written. Metrics, params, tags and small text artifacts queue up and reach
    the store together.

    In bulk (a local SQLite store) the run is created lazily: by its first ``flush`` (a long
    run's live progress) or by ``finish``, which then writes the whole run - row, params, tags,
    metrics, texts and final status - in one transaction (``finish_many`` does it for many runs at
    once). A loop that ends before ``tracking.flush_every_s`` so costs one transaction instead
    of a dozen API calls. On a tracking server the run is created at once (or, opened ``lazy``,
    by ``finish_many``, which sends many runs' requests side by side) and ``flush`` sends
    ``log_batch`` requests filled to MLflow's limits."""

    uri: str
    run_id: str
    exp_id: str = ""
    name: str = ""
    created: bool = True  # the run's row exists in the store
    start_time: int = field(default_factory=lambda: now_ms())
    end_time: Optional[int] = None  # set by the caller for a run whose end is known (else: now)
    sent_epochs: int = 0
    pending_metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    pending_params: dict[str, str] = field(default_factory=dict)
    pending_tags: dict[str, str] = field(default_factory=dict)
    pending_texts: dict[str, str] = field(default_factory=dict)  # artifact path -> text
    artifact_uri: str = ""  # known once created through the API: texts go there directly

    @classmethod
    def open(cls, uri: str, exp_id: str, name: str, tags: Mapping[str, Any],
             start_time: Optional[int] = None, lazy: bool = False) -> "RunLog":
        """A new run named ``name`` (started at ``start_time``, ms since the epoch, or now):
        created now through MLflow's API (``lazy``: by ``finish_many``), or in bulk
        by its first flush or its finish."""
        name = scrub(name)
        cleaned = {k: clean(v, MAX_TAG_VALUE) for k, v in tags.items()}
        if bulk.store_for(uri) is None and not lazy:
            rl = cls(uri, "", exp_id, name, created=False, start_time=start_time or now_ms())
            rl.pending_tags.update(cleaned)
            rl.create()
            return rl
        run_id = uuid.uuid4().hex if bulk.store_for(uri) is not None else ""
        rl = cls(uri, run_id, exp_id, name, created=False, start_time=start_time or now_ms())
        rl.pending_tags.update(cleaned)
        return rl

    def queue_epochs(self, first_epoch: int, metrics: Mapping[str, Sequence[float]]) -> None:
        """Queue per-epoch metrics (``step=epoch``)."""
        for key, values in metrics.items():
            self.pending_metrics.setdefault(key, []).extend(
                (first_epoch + i, float(v)) for i, v in enumerate(values))
        if metrics:
            self.sent_epochs = max(self.sent_epochs, first_epoch + max(len(v) for v in metrics.values()))

    def log_epochs(self, first_epoch: int, metrics: Mapping[str, Sequence[float]]) -> None:
        """Queue per-epoch metrics and send everything pending now (live progress in the UI)."""
        self.queue_epochs(first_epoch, metrics)
        self.flush()

    def add(self, params: Optional[Mapping[str, Any]] = None, tags: Optional[Mapping[str, Any]] = None,
            texts: Optional[Mapping[str, str]] = None) -> None:
        """Queue params, tags and text artifacts for the next ``flush``/``finish``."""
        for k, v in (params or {}).items():
            self.pending_params[k] = clean(v, MAX_PARAM_VALUE)
        for k, v in (tags or {}).items():
            self.pending_tags[k] = clean(v, MAX_TAG_VALUE)
        for k, v in (texts or {}).items():
            self.pending_texts[k] = scrub(v)

    def create(self) -> None:
        """Create the run through MLflow's API, with the tags pending so far."""
        created = client(self.uri).create_run(self.exp_id, start_time=self.start_time,
                                              tags=self.pending_tags, run_name=self.name)
        self.run_id, self.created, self.pending_tags = created.info.run_id, True, {}
        self.artifact_uri = created.info.artifact_uri

    def flush(self) -> None:
        """Send everything pending now: creates a lazily opened run (one transaction), else
        ``log_batch`` calls filled to MLflow's limits."""
        store = bulk.store_for(self.uri)
        if not self.created and store is not None:
            bulk.write_runs(store, [self], status=None)
            return
        if store is not None:  # the run exists: one transaction adds to it
            self.pending_texts = bulk.append(store, self.run_id, self.pending_metrics, self.pending_params,
                                             self.pending_tags, self.pending_texts, clock())
            self.pending_metrics, self.pending_params, self.pending_tags = {}, {}, {}
            if not self.pending_texts:
                return
        if not self.created:
            self.create()
        from mlflow.entities import Metric, Param, RunTag

        ts = clock()
        ms = [Metric(k, metric_value(v), ts, step) for k, rows in self.pending_metrics.items() for step, v in rows]
        ps = [Param(k, v) for k, v in self.pending_params.items()]
        tg = [RunTag(k, v) for k, v in self.pending_tags.items()]
        self.pending_metrics, self.pending_params, self.pending_tags = {}, {}, {}
        c = client(self.uri)
        while ms or ps or tg:  # at most 1000 entities per request, of which 100 params+tags
            p_n = min(len(ps), MAX_PARAMS_TAGS_PER_BATCH)
            t_n = min(len(tg), MAX_PARAMS_TAGS_PER_BATCH - p_n)
            m_n = min(len(ms), MAX_METRICS_PER_BATCH - p_n - t_n)
            c.log_batch(self.run_id, metrics=ms[:m_n], params=ps[:p_n], tags=tg[:t_n], synchronous=True)
            ms, ps, tg = ms[m_n:], ps[p_n:], tg[t_n:]
        texts, self.pending_texts = self.pending_texts, {}
        if not write_texts(self.uri, self.exp_id, self.run_id, texts, remote_ok=not self.artifact_uri):
            upload_texts(self.uri, self.artifact_uri, texts)  # no lookup of the run's location

    def finish(self, status: str) -> None:
        """Write what is pending and set the run's final status."""
        finish_many(self.uri, [self], status)


def finish_many(uri: str, logs: Sequence[RunLog], status: str) -> None:
    """Write the pending contents of many runs and give them ``status``. Runs not yet created
    are written in one transaction in bulk (chunk the list to bound memory);
    the others through MLflow's API."""
    store = bulk.store_for(uri)
    new = [rl for rl in logs if not rl.created] if store is not None else []
    if new:
        bulk.write_runs(store, new, status)
    done = {id(rl) for rl in new}
    rest = [rl for rl in logs if id(rl) not in done]

    def finish(rl: RunLog) -> None:
        rl.flush()
        client(uri).set_terminated(rl.run_id, status=status, end_time=rl.end_time)

    if len(rest) < 2:
        for rl in rest:
            finish(rl)
        return
    # A tracking server: each run is several requests that wait on the network, so the runs
    # go side by side (the first error, e.g. a server gone away, is raised once all stopped).
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(SERVER_CONCURRENCY, len(rest))) as pool:
        futures = [pool.submit(finish, rl) for rl in rest]
    for f in futures:
        f.result()




SERVER_CONCURRENCY = 8  # runs sent to a tracking server side by side


def upload_texts(uri: str, artifact_uri: str, texts: Mapping[str, str]) -> None:
    """Text artifacts uploaded straight to a run's artifact location (as the client would,
    after looking the location up)."""
    import tempfile
    from pathlib import Path

    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(artifact_uri, tracking_uri=uri)
    with tempfile.TemporaryDirectory() as folder:
        for path, text in texts.items():
            out = Path(folder) / path
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
        repo.log_artifacts(folder)


def params_for(flat_config: Mapping[str, Any]) -> dict[str, str]:
    """MLflow params from the flattened resolved config, minus private keys."""
    return {k: str(v) for k, v in flat_config.items() if k not in PRIVATE_KEYS}


@contextmanager
def run(uri: str, exp_id: str, name: str, tags: Mapping[str, Any],
        params: Optional[Mapping[str, Any]] = None, start_time: Optional[int] = None) -> Iterator[RunLog]:
    """Open a run and yield its RunLog. On an exception the run is marked FAILED with the
    error as a tag and the traceback as an artifact, and the exception propagates; on
    KeyboardInterrupt it is KILLED. Whatever is pending is always written."""
    rl = RunLog.open(uri, exp_id, name, tags, start_time)
    rl.add(params=params)
    status = "FINISHED"
    try:
        yield rl
    except BaseException as err:
        status = stopping.status_for(err)
        if status == "KILLED":
            if not isinstance(err, stopping.Stopped):
                raise stopping.as_stopped(err) from err  # an error the stop caused
            raise
        if isinstance(err, StoreUnreachable) or unreachable(err):
            status = ""  # nothing more can be written; the next launch marks it KILLED
            if isinstance(err, StoreUnreachable):
                raise
            raise store_unreachable(uri, err) from err
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        rl.add(tags={TAG_ERROR: scrub(f"{type(err).__name__}: {first}")},
               texts={"error/traceback.txt": "".join(traceback.format_exception(err))})
        raise
    finally:
        if status:
            with stopping.deferred():  # all of the run or none of it, even on Ctrl-C
                rl.finish(status)


def experiment_id(uri: str, name: str, artifact_root: Optional[str] = None) -> str:
    """Get or create the experiment ``name``; for a local store its artifacts go under
    ``artifact_root``. A new local store starts as a copy of an empty one; on a store the bulk
    path may take, MLflow is not imported."""
    seed_sqlite(uri)
    store = bulk.store_for(uri)
    if store is not None and artifact_root and name and len(name) <= 256 \
            and "MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH" not in os.environ:
        location = Path(artifact_root).resolve().as_uri()
        found = bulk.experiment_id(store, name, location) if len(location) <= 2048 else None
        if found is not None:  # (None: a deleted one of that name, which MLflow restores)
            remember_location(uri, found, bulk.locations(store, {found})[found])
            return found
    return plain_experiment_id(uri, name, artifact_root)


def set_status(uri: str, run_id: str, status: str) -> None:
    """End a run with ``status`` (FINISHED, FAILED, KILLED)."""
    store = bulk.store_for(uri)
    if store is None or not bulk.terminate(store, run_id, status):
        plain_set_status(uri, run_id, status)  # (no such active run: MLflow says so)


def start_parent(uri: str, exp_id: str, name: str, tags: Mapping[str, Any]) -> str:
    """Create a sweep's parent run (left RUNNING until ``end_parent``)."""
    store = bulk.store_for(uri)
    if store is not None:
        return bulk.create_run(store, exp_id, name, {k: clean(v, MAX_TAG_VALUE) for k, v in tags.items()},
                               "RUNNING")
    tags = {TAG_HOST: socket.gethostname(), TAG_PID: os.getpid(), **tags}
    return client(uri).create_run(exp_id, tags={k: str(v) for k, v in tags.items()}, run_name=name).info.run_id


def end_parent(uri: str, run_id: str, status: str, tags: Optional[Mapping[str, Any]] = None,
               texts: Optional[Mapping[str, str]] = None) -> None:
    """Finish a parent run with its summary tags and text artifacts."""
    rl = RunLog(uri, run_id)
    rl.add(tags=tags, texts=texts)
    try:
        rl.flush()  # tags, then the texts through the same path as every run's artifacts
    finally:
        set_status(uri, run_id, status)



