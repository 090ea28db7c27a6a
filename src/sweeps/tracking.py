"""The only module that talks to MLflow: where the store is, experiments, parent and child runs,
batched metric logging, and reading runs back for the end-of-sweep summary.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence
from urllib.parse import urlsplit

from sweeps.config import ConfigError
from sweeps.errors import stop_requested

log = logging.getLogger(__name__)

# MLflow's per-request limits for log_batch (mlflow.utils.validation).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_TAG_VALUE = 8000
MAX_PARAM_VALUE = 6000

# Keys of the config never written to the store: they may hold credentials or say only where
# things go, not what was computed.
PRIVATE_KEYS = ("tracking.uri",)

TAG_ROLE = "sweeps.role"  # parent | child | single
TAG_SWEEP_DIR = "sweeps.sweep_dir"
TAG_HASH = "sweeps.config_hash"
TAG_ERROR = "sweeps.error"
TAG_NOTE = "mlflow.note.content"
TAG_PARENT = "mlflow.parentRunId"
TAG_HOST = "sweeps.host"
TAG_PID = "sweeps.pid"

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s'\"]+@")


def scrub(text: str) -> str:
    """Remove user:password@ from every URL in a text (overrides, config files, messages)."""
    return _USERINFO.sub(lambda m: m.group("scheme"), text)


def default_uri(output_dir: str) -> str:
    """The embedded store: a SQLite file under the outputs root."""
    return "sqlite:///" + str(Path(output_dir).resolve() / "mlflow.db")


def resolve_uri(uri: Optional[str], output_dir: str) -> str:
    """``tracking.uri`` if set, else ``$MLFLOW_TRACKING_URI``, else the embedded SQLite store.
    A relative SQLite path is made absolute, so jobs and the printed commands agree."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(output_dir)
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = uri[len("sqlite:///"):]
        if path and path != ":memory:":
            uri = "sqlite:///" + str(Path(path).resolve())
    elif "://" not in uri:
        uri = str(Path(uri).resolve())
    return uri


def redact(uri: str) -> str:
    """The URI with any user:password removed, for printing."""
    return scrub(uri)


def local_store_path(uri: str) -> Optional[Path]:
    """The file behind a local SQLite URI, or None for other stores."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):])
    return None


def check_writable(uri: str) -> None:
    """Fail early, before any run exists, when a local store cannot be written.

    Raises:
        ConfigError: the store's directory cannot be created or written, or the URI scheme is
            not one MLflow serves.
    """
    scheme = urlsplit(uri).scheme.split("+")[0]  # postgresql+psycopg2 -> postgresql
    if scheme not in ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks", "file", ""):
        raise ConfigError(
            f"tracking.uri={redact(uri)!r}: unsupported scheme {scheme!r}; "
            "use sqlite:///path.db, http(s)://host:port or a database URI"
        )
    path = local_store_path(uri)
    if path is None:
        return
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"tracking.uri={uri!r}: cannot create directory {str(folder)!r} ({err.strerror}); "
            "choose a writable path"
        ) from None
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK) or (path.exists() and not path.is_file()):
        raise ConfigError(f"tracking.uri={uri!r}: {str(target)!r} is not writable; choose a writable path")
    if path.exists() and path.stat().st_size > 0:
        _check_sqlite_store(uri, path)


def _check_sqlite_store(uri: str, path: Path) -> None:
    """An existing file must be an MLflow SQLite store that we can write now: MLflow would
    otherwise add its tables to someone else's database, or wait 20 s on a lock and fail deep
    inside a job."""
    import sqlite3

    with open(path, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise ConfigError(f"tracking.uri={uri!r}: {str(path)!r} is not an SQLite database; "
                              "point tracking.uri at an MLflow store or a new file")
    try:
        db = sqlite3.connect(path, timeout=5)
        try:
            tables = {r[0] for r in db.execute("select name from sqlite_master where type = 'table'")}
            if tables and not {"experiments", "runs", "alembic_version"} <= tables:
                raise ConfigError(f"tracking.uri={uri!r}: {str(path)!r} is an SQLite database but not "
                                  "an MLflow store; point tracking.uri at an MLflow store or a new file")
            db.execute("begin immediate")  # the write lock MLflow will need, for a moment
            db.rollback()
        finally:
            db.close()
    except sqlite3.OperationalError as err:
        if stop_requested.is_set():  # a SIGTERM interrupted the wait for the lock
            raise KeyboardInterrupt("SIGTERM") from None
        what = "is locked by another program" if "locked" in str(err) else f"cannot be written ({err})"
        raise ConfigError(f"tracking.uri={uri!r}: {str(path)!r} {what}; close it or choose another store") from None


# Bounded patience with a tracking server: MLflow's defaults (120 s timeout, 7 retries with
# back-off) turn a server that went away into a hang of many minutes. Users may override them.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}


class StoreUnreachable(BaseException):
    """The tracking server cannot be reached. A BaseException: Hydra's launchers record an
    ``Exception`` as one failed job and start the next, which would wait on the same dead server."""


def unreachable(err: BaseException) -> Optional[str]:
    """Why the tracking server could not be reached (``connection refused``, ``timed out``,
    ``server errors``) when that is what ``err`` or an exception behind it says; else None."""
    import requests

    seen: list[BaseException] = []
    cur: Optional[BaseException] = err
    while cur is not None and cur not in seen:
        seen.append(cur)
        if isinstance(cur, StoreUnreachable):
            return str(cur)
        if isinstance(cur, requests.exceptions.Timeout):
            return "timed out"
        if isinstance(cur, requests.exceptions.ConnectionError):
            text = str(cur).lower()
            if "refused" in text:
                return "connection refused"
            return "timed out" if "timed out" in text else "connection failed"
        if isinstance(cur, requests.exceptions.RetryError):
            return "server errors"
        cur = cur.__cause__ or cur.__context__
    return None


def store_unreachable(uri: str, err: BaseException) -> StoreUnreachable:
    """The one-line error of a sweep stopped because its tracking server went away."""
    return StoreUnreachable(
        f"tracking server {redact(uri)} unreachable ({unreachable(err)}); the sweep stopped. "
        "When the server is back, run the same command again: finished runs are skipped"
    )


@lru_cache(maxsize=8)
def client(uri: str) -> Any:
    """One MlflowClient per store and process: opening (and migrating) a store is the slow part."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from mlflow.tracking import MlflowClient

    seed_sqlite(uri)
    return MlflowClient(tracking_uri=uri)


def seed_sqlite(uri: str) -> bool:
    """Start a new local SQLite store as a copy of an empty one this MLflow version made before
    (kept in ~/.cache/sweeps): MLflow creates a store by running its ~60 schema migrations,
    2-3 s here, every time. The copy is what MLflow would have made, its Default experiment
    pointing where MLflow would point it from here. Returns True when it seeded the store.
    SWEEPS_NO_STORE_TEMPLATE=1 turns it off."""
    path = local_store_path(uri)
    if path is None or os.environ.get("SWEEPS_NO_STORE_TEMPLATE") or path.exists() \
            or not path.parent.is_dir():
        return False
    import shutil
    import sqlite3
    import subprocess

    import mlflow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sweeps"
    template = cache / f"mlflow-{mlflow.__version__}-empty.db"
    try:
        if not template.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            tmp = cache / f".{template.name}.{os.getpid()}"
            _make_empty_store(tmp)
            os.replace(tmp, template)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.seed")
        shutil.copyfile(template, tmp)
        db = sqlite3.connect(tmp)
        try:
            now = _now_ms()
            db.execute("update experiments set artifact_location = ?, creation_time = ?, "
                       "last_update_time = ? where experiment_id = 0", (_default_location(), now, now))
            db.commit()
        finally:
            db.close()
        try:
            os.link(tmp, path)  # only if no file appeared meanwhile (another job seeding it)
        except FileExistsError:
            return False  # whatever is there now, MLflow opens (or creates) it as usual
        finally:
            tmp.unlink(missing_ok=True)
        return True
    except (OSError, sqlite3.Error, subprocess.SubprocessError) as err:
        log.debug("no store template (%s): MLflow creates the store", err)
        return False


def _make_empty_store(path: Path) -> None:
    """An empty store as MLflow makes it, in a child process (the engine MLflow caches for a
    URI must not outlive the file, and this process may already have one)."""
    import subprocess
    import sys

    code = ("import sys; from mlflow.tracking import MlflowClient; "
            "MlflowClient(tracking_uri='sqlite:///' + sys.argv[1]).search_experiments()")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, timeout=300)


def _default_location() -> str:
    """Where MLflow points the Default experiment of a store it creates from this process."""
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.tracking._tracking_service.utils import _SERVER_ARTIFACT_ROOT_ENV_VAR
    from mlflow.utils.uri import append_to_uri_path, resolve_uri_if_local

    root = os.environ.get(_SERVER_ARTIFACT_ROOT_ENV_VAR, DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
    return str(append_to_uri_path(resolve_uri_if_local(root), "0"))


def experiment_id(uri: str, name: str, artifact_root: Optional[str] = None) -> str:
    """Get or create the experiment ``name``. For a local store its artifacts go under
    ``artifact_root`` (not MLflow's default ./mlartifacts in whatever directory you stand in)."""
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    # A tracking server chooses the artifact root (mlflow-artifacts:/ with --serve-artifacts): a
    # path on this machine would send artifacts past the server, where no other machine sees them.
    server = urlsplit(uri).scheme in ("http", "https", "databricks")
    location = Path(artifact_root).resolve().as_uri() if artifact_root and not server else None
    try:
        return c.create_experiment(name, artifact_location=location)
    except Exception:  # another process created it between our get and create
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _clean(value: Any, limit: int) -> str:
    text = str(value)
    return (scrub(text) if "@" in text else text)[:limit]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _metric_value(v: float) -> float:
    # MLflow stores NaN as such; +-inf become the largest finite doubles, which the UI can plot.
    return v if not math.isinf(v) else math.copysign(1.7976931348623157e308, v)


@dataclass
class RunLog:
    """A run being written. Metrics, params, tags and small text artifacts queue up and reach
    the store together.

    On a database store the run is created lazily: by its first ``flush`` (a long run's live
    progress) or by ``finish``, which then writes the whole run - row, params, tags, metrics,
    texts and final status - in one transaction (``finish_many`` does it for many runs at
    once). A loop that ends before ``tracking.flush_every_s`` so costs one transaction instead
    of a dozen API calls. On a tracking server the run is created at once and ``flush`` sends
    ``log_batch`` requests filled to MLflow's limits."""

    uri: str
    run_id: str
    exp_id: str = ""
    name: str = ""
    created: bool = True  # the run's row exists in the store
    start_time: int = field(default_factory=lambda: _now_ms())
    sent_epochs: int = 0
    pending_metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    pending_params: dict[str, str] = field(default_factory=dict)
    pending_tags: dict[str, str] = field(default_factory=dict)
    pending_texts: dict[str, str] = field(default_factory=dict)  # artifact path -> text
    any_sent: bool = False  # metrics already in the store (later ones go through MLflow's API)

    @classmethod
    def open(cls, uri: str, exp_id: str, name: str, tags: Mapping[str, Any]) -> "RunLog":
        """A new run named ``name``: created now through MLflow's API, or on a database store
        by its first flush or its finish."""
        name = scrub(name)
        clean = {k: _clean(v, MAX_TAG_VALUE) for k, v in tags.items()}
        if _sql(uri) is None:
            created = client(uri).create_run(exp_id, tags=clean, run_name=name)
            return cls(uri, created.info.run_id, exp_id, name)
        rl = cls(uri, uuid.uuid4().hex, exp_id, name, created=False)
        rl.pending_tags.update(clean)
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
            self.pending_params[k] = _clean(v, MAX_PARAM_VALUE)
        for k, v in (tags or {}).items():
            self.pending_tags[k] = _clean(v, MAX_TAG_VALUE)
        for k, v in (texts or {}).items():
            self.pending_texts[k] = scrub(v)

    def flush(self) -> None:
        """Send everything pending now: creates a lazily opened run (one transaction), else
        ``log_batch`` calls filled to MLflow's limits."""
        store = _sql(self.uri)
        if not self.created and store is not None:
            _write_sql(store, [self], status=None)
            return
        from mlflow.entities import Metric, Param, RunTag

        ts = _clock()
        ms = [Metric(k, _metric_value(v), ts, step) for k, rows in self.pending_metrics.items() for step, v in rows]
        ps = [Param(k, v) for k, v in self.pending_params.items()]
        tg = [RunTag(k, v) for k, v in self.pending_tags.items()]
        self.pending_metrics, self.pending_params, self.pending_tags = {}, {}, {}
        self.any_sent = self.any_sent or bool(ms)
        c = client(self.uri)
        while ms or ps or tg:  # at most 1000 entities per request, of which 100 params+tags
            p_n = min(len(ps), MAX_PARAMS_TAGS_PER_BATCH)
            t_n = min(len(tg), MAX_PARAMS_TAGS_PER_BATCH - p_n)
            m_n = min(len(ms), MAX_METRICS_PER_BATCH - p_n - t_n)
            c.log_batch(self.run_id, metrics=ms[:m_n], params=ps[:p_n], tags=tg[:t_n], synchronous=True)
            ms, ps, tg = ms[m_n:], ps[p_n:], tg[t_n:]
        texts, self.pending_texts = self.pending_texts, {}
        _write_texts(self.uri, self.exp_id, self.run_id, texts, remote_ok=True)

    def finish(self, status: str) -> None:
        """Write what is pending and set the run's final status."""
        finish_many(self.uri, [self], status)


def finish_many(uri: str, logs: Sequence[RunLog], status: str) -> None:
    """Write the pending contents of many runs and give them ``status``. Runs not yet created
    are written in one transaction on a database store (chunk the list to bound memory);
    the others through MLflow's API."""
    store = _sql(uri)
    new = [rl for rl in logs if not rl.created] if store is not None else []
    if new:
        _write_sql(store, new, status)
    for rl in logs:
        if rl.created and rl not in new:
            rl.flush()
            client(uri).set_terminated(rl.run_id, status=status)


_last_ms = 0


def _clock() -> int:
    """Milliseconds since the epoch, strictly increasing in this process: the timestamp of
    a run's metrics. Distinct timestamps keep MLflow's metric index (key, timestamp, step,
    run) appending at the end instead of inserting all over it: 2-3x faster bulk writes."""
    global _last_ms
    _last_ms = max(_now_ms(), _last_ms + 1)
    return _last_ms


@lru_cache(maxsize=64)
def _artifact_location(uri: str, exp_id: str) -> str:
    return client(uri).get_experiment(exp_id).artifact_location


def _local_artifacts(uri: str, exp_id: str, run_id: str) -> Optional[Path]:
    """The run's artifact folder when the experiment keeps artifacts on this file system."""
    location = _artifact_location(uri, exp_id) if exp_id else ""
    scheme = urlsplit(location).scheme
    if not location or scheme not in ("", "file"):  # mlflow-artifacts:/, s3://, ... go through MLflow
        return None
    from mlflow.utils.file_utils import local_file_uri_to_path

    return Path(local_file_uri_to_path(location)) / run_id / "artifacts"


def _write_texts(uri: str, exp_id: str, run_id: str, texts: Mapping[str, str], remote_ok: bool) -> bool:
    """Write text artifacts: straight into a local artifact folder (MLflow's local artifact
    repository does the same, with more steps), else through the client when ``remote_ok``
    (the run must exist). Returns False when some were left for a later call."""
    if not texts:
        return True
    local = _local_artifacts(uri, exp_id, run_id)
    if local is None:
        if not remote_ok:
            return False
        for path, text in texts.items():
            client(uri).log_text(run_id, text, path)
        return True
    for path, text in texts.items():
        out = local / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return True


def _write_sql(store: Any, logs: Sequence[RunLog], status: Optional[str]) -> None:
    """Create the runs of ``logs`` (not yet in the store) with everything pending, in one
    transaction through MLflow's own table models, as ``create_run`` + ``log_batch`` +
    ``set_terminated`` would leave them (``status`` None: left RUNNING). MLflow's
    ``log_batch`` builds an ORM object per value and costs ~0.1 s per 1000 metrics, which
    would dominate a sweep of tiny loops."""
    from mlflow.entities import LifecycleStage, RunStatus, SourceType
    from mlflow.exceptions import MlflowException
    from mlflow.store.tracking.dbmodels.models import (
        SqlExperiment, SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag)
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, MLFLOW_USER
    from mlflow.utils.uri import append_to_uri_path
    from sqlalchemy import insert, select

    end = _now_ms() if status else None
    runs, tags, params, metrics, latest, remote = [], [], [], [], [], []
    for rl in logs:
        exp_id = rl.exp_id
        location = _artifact_location(rl.uri, exp_id)
        runs.append({
            "run_uuid": rl.run_id, "name": rl.name, "artifact_uri": append_to_uri_path(location, rl.run_id, "artifacts"),
            "experiment_id": int(exp_id), "source_type": SourceType.to_string(SourceType.UNKNOWN),
            "source_name": "", "entry_point_name": "", "user_id": rl.pending_tags.get(MLFLOW_USER, "unknown"),
            "status": status or RunStatus.to_string(RunStatus.RUNNING), "start_time": rl.start_time,
            "end_time": end, "deleted_time": None, "source_version": "", "lifecycle_stage": LifecycleStage.ACTIVE,
        })
        rl.pending_tags.setdefault(MLFLOW_RUN_NAME, rl.name)
        tags += [{"run_uuid": rl.run_id, "key": k, "value": v} for k, v in rl.pending_tags.items()]
        params += [{"run_uuid": rl.run_id, "key": k, "value": v} for k, v in rl.pending_params.items()]
        ts = _clock()
        for key, rows in rl.pending_metrics.items():
            by_step = dict(rows)  # one value per step, the last one logged
            last = None
            for step, v in by_step.items():
                nan = math.isnan(v)
                row = {"run_uuid": rl.run_id, "key": key, "value": 0.0 if nan else _metric_value(v),
                       "timestamp": ts, "step": step, "is_nan": nan}
                metrics.append(row)
                if last is None or step >= last["step"]:
                    last = row  # MLflow's latest value of a key is the one at its highest step
            if last is not None:
                latest.append(last)
        if rl.pending_metrics:
            rl.any_sent = True
        if not _write_texts(rl.uri, exp_id, rl.run_id, rl.pending_texts, remote_ok=False):
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
        _write_texts(rl.uri, rl.exp_id, rl.run_id, texts, remote_ok=True)


def params_for(flat_config: Mapping[str, Any]) -> dict[str, str]:
    """MLflow params from the flattened resolved config, minus private keys."""
    return {k: str(v) for k, v in flat_config.items() if k not in PRIVATE_KEYS}


@contextmanager
def run(uri: str, exp_id: str, name: str, tags: Mapping[str, Any],
        params: Optional[Mapping[str, Any]] = None) -> Iterator[RunLog]:
    """Open a run and yield its RunLog. On an exception the run is marked FAILED with the
    error as a tag and the traceback as an artifact, and the exception propagates; on
    KeyboardInterrupt it is KILLED. Whatever is pending is always written."""
    rl = RunLog.open(uri, exp_id, name, tags)
    rl.add(params=params)
    status = "FINISHED"
    try:
        yield rl
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except StoreUnreachable:
        status = ""  # nothing more can be written; the next launch marks it KILLED
        raise
    except BaseException as err:
        if stop_requested.is_set():  # an error the SIGTERM caused: the run was killed
            status = "KILLED"
            raise KeyboardInterrupt("SIGTERM") from err
        if unreachable(err):
            status = ""
            raise store_unreachable(uri, err) from err
        status = "FAILED"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        rl.add(tags={TAG_ERROR: scrub(f"{type(err).__name__}: {first}")},
               texts={"error/traceback.txt": "".join(traceback.format_exception(err))})
        raise
    finally:
        if status:
            rl.finish(status)


def start_parent(uri: str, exp_id: str, name: str, tags: Mapping[str, Any]) -> str:
    """Create a sweep's parent run (left RUNNING until ``end_parent``)."""
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
        client(uri).set_terminated(run_id, status=status)


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
        client(uri).set_terminated(r.info.run_id, status="KILLED")
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


def delete_run(uri: str, run_id: str) -> None:
    client(uri).delete_run(run_id)


@dataclass(frozen=True)
class ChildRow:
    """What the end-of-sweep summary needs from one child run."""

    run_id: str
    name: str
    status: str
    symptom: str
    error: str
    val_loss: float


def children(uri: str, exp_id: str, parent_id: str) -> list[ChildRow]:
    """All child runs of a parent: one query on a database store (MLflow's search loads every
    param and tag of every run: ~15 s for 7,200 runs), else one search call per page of 1000."""
    store = _sql(uri)
    if store is not None:
        return _children_sql(store, exp_id, parent_id)
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


def _children_sql(store: Any, exp_id: str, parent_id: str) -> list[ChildRow]:
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


# --- reading back ------------------------------------------------------------------------------


def find_experiment(uri: str, name: Optional[str]) -> Optional[tuple[str, str]]:
    """(id, name) of experiment ``name``; with no name, of the experiment holding the most
    recently started sweep (parent run). None when there is none."""
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


def search_all(uri: str, exp_id: str, filter_string: str = "", status: Optional[str] = None) -> list[Any]:
    """Every active run of an experiment (with ``status``, only those): MLflow's Run objects
    through its search, following pages of 1000; without a filter string on a database store,
    the same contents read in bulk (MLflow's search costs ~2 ms per run)."""
    store = _sql(uri) if not filter_string else None
    if store is not None:
        return _runs_sql(store, exp_id, status)
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


def _runs_sql(store: Any, exp_id: str, status: Optional[str]) -> list[_Run]:
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
        for chunk in _chunks(list(runs), 500):
            for table, attr in ((SqlTag.__table__, "tags"), (SqlParam.__table__, "params")):
                for run_id, key, value in session.execute(select(table.c.run_uuid, table.c.key, table.c.value)
                                                          .where(table.c.run_uuid.in_(chunk))).all():
                    getattr(runs[run_id].data, attr)[key] = value
            m = SqlLatestMetric.__table__
            for run_id, key, value, is_nan in session.execute(select(m.c.run_uuid, m.c.key, m.c.value, m.c.is_nan)
                                                              .where(m.c.run_uuid.in_(chunk))).all():
                runs[run_id].data.metrics[key] = math.nan if is_nan else value
    return list(runs.values())


def _sql(uri: str) -> Any:
    """MLflow's SQLAlchemy store behind a database URI, or None (REST and other stores)."""
    store = client(uri)._tracking_client.store
    return store if hasattr(store, "ManagedSessionMaker") and not os.environ.get("SWEEPS_PLAIN_LOGGING") else None


def histories(uri: str, run_ids: list[str], keys: Iterable[str]) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """Per-(run, key) metric histories as sorted (step, value) lists, the last value logged per
    step. On a database store: one plain query per chunk of runs over MLflow's metrics table
    (the client reads one run and key per call, ~3 ms each); elsewhere the client's reads."""
    keys = list(keys)
    store = _sql(uri)
    if store is not None:
        from mlflow.store.tracking.dbmodels.models import SqlMetric
        from sqlalchemy import select

        t = SqlMetric.__table__
        found: dict[tuple[str, str], dict[int, float]] = {}
        with store.ManagedSessionMaker() as session:
            for chunk in _chunks(list(run_ids), 500):
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
    out: dict[tuple[str, str], dict[int, tuple[int, float]]] = {}
    c = client(uri)
    for run_id in run_ids:
        for key in keys:
            for m in c.get_metric_history(run_id, key):
                slot = out.setdefault((run_id, key), {})
                if m.step not in slot or m.timestamp >= slot[m.step][0]:
                    slot[m.step] = (m.timestamp, m.value)
    return {k: [(step, v) for step, (_, v) in sorted(slot.items())] for k, slot in out.items()}


def set_tags(uri: str, tags_by_run: Mapping[str, Mapping[str, Any]]) -> None:
    """Write tags to many runs: one transaction on a database store, else a log_batch per run."""
    store = _sql(uri)
    if store is not None and tags_by_run:
        from mlflow.store.tracking.dbmodels.models import SqlTag
        from sqlalchemy import delete, insert

        t = SqlTag.__table__
        with store.ManagedSessionMaker(read_only=False) as session:
            for run_id, tags in tags_by_run.items():
                session.execute(delete(t).where(t.c.run_uuid == run_id, t.c.key.in_(list(tags))))
            session.execute(insert(t), [
                {"run_uuid": run_id, "key": k, "value": _clean(v, MAX_TAG_VALUE)}
                for run_id, tags in tags_by_run.items() for k, v in tags.items()])
        return
    for run_id, tags in tags_by_run.items():
        rl = RunLog(uri, run_id)
        rl.add(tags=tags)
        rl.flush()


def log_dir(uri: str, run_id: str, local_dir: Path, artifact_path: Optional[str] = None) -> None:
    client(uri).log_artifacts(run_id, str(local_dir), artifact_path)


# --- UI (issue 14) -----------------------------------------------------------------------------
# What makes the MLflow UI land on a sweep's results: the URL of its runs, an experiment that
# describes itself, and a parent run with metrics and images for the chart view and run page.

UI_PORT = 5000  # where `mlflow ui` listens unless told otherwise
TAG_NOTE_SHA = "sweeps.note_sha"  # experiment tag: hash of the description this tool wrote last


def runs_url(uri: str, exp_id: str, port: int = UI_PORT) -> Optional[str]:
    """The experiment's runs in the UI's "Model training" view (MLflow 3 opens its GenAI view
    unless the URL says otherwise): on the tracking server itself, without any user:password
    or query, or on ``mlflow ui`` at 127.0.0.1:<port> for a store it opens. None for Databricks."""
    parts = urlsplit(uri)
    if parts.scheme == "databricks" or uri == "databricks":
        return None
    if parts.scheme in ("http", "https"):
        host = parts.netloc.rsplit("@", 1)[-1]
        base = f"{parts.scheme}://{host}{parts.path.rstrip('/')}"
    else:
        base = f"http://127.0.0.1:{port}"
    return f"{base}/#/experiments/{exp_id}/runs?workflowType=machine_learning"


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_experiment(uri: str, exp_id: str, text: str) -> bool:
    """Set the experiment's description (markdown, shown with the experiment in the UI), unless
    someone wrote their own: a description is replaced only when it is the one this tool wrote
    last. Returns True when it wrote it."""
    c = client(uri)
    tags = c.get_experiment(exp_id).tags
    current = tags.get(TAG_NOTE)
    if current and current != text and tags.get(TAG_NOTE_SHA) != _sha(current):
        return False
    c.set_experiment_tag(exp_id, TAG_NOTE, scrub(text)[:MAX_TAG_VALUE])
    c.set_experiment_tag(exp_id, TAG_NOTE_SHA, _sha(scrub(text)[:MAX_TAG_VALUE]))
    return True


def log_results(uri: str, run_id: str, metrics: Mapping[str, float], images: Iterable[Path] = ()) -> None:
    """Log metrics (at step 0) on a run, and images under their file's stem as the key: the run
    page's "Model metrics" and the experiment's chart view draw both."""
    from mlflow.entities import Metric

    c = client(uri)
    ts = _now_ms()
    ms = [Metric(k, _metric_value(float(v)), ts, 0) for k, v in metrics.items()]
    for chunk in _chunks(ms, MAX_METRICS_PER_BATCH):
        c.log_batch(run_id, metrics=chunk, synchronous=True)
    images = list(images)
    if images:
        from PIL import Image

        for path in images:
            with Image.open(path) as im:
                c.log_image(run_id, im.convert("RGB"), key=Path(path).stem, step=0, synchronous=True)
