"""Where the store is and how to reach it: URIs, the one MlflowClient per store, experiments,
whether a server is reachable; the small helpers the writing and reading modules share."""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional
from urllib.parse import urlsplit

from sweeps import stopping
from sweeps.config_error import ConfigError
from sweeps.secrets import remember, scrub
from sweeps.tracking import seed
from sweeps.tracking.server import HTTP_DEFAULTS

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


def default_uri(output_dir: str) -> str:
    """The embedded store: a SQLite file under the outputs root."""
    return "sqlite:///" + str(Path(output_dir).resolve() / "mlflow.db")


def resolve_uri(uri: Optional[str], output_dir: str) -> str:
    """``tracking.uri`` if set, else ``$MLFLOW_TRACKING_URI``, else the embedded SQLite store.
    A relative SQLite path is made absolute, so jobs and the printed commands agree."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(output_dir)
    remember(uri)  # its password is masked wherever it shows up, however it is spelled
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = uri[len("sqlite:///"):]
        if path and path != ":memory:":
            uri = "sqlite:///" + str(Path(path).resolve())
    elif "://" not in uri:
        uri = str(Path(uri).resolve())
    return uri


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
            f"tracking.uri={scrub(uri)!r}: unsupported scheme {scheme!r}; "
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
        if stopping.is_stop(err):  # a signal cut the wait for the lock short
            raise stopping.as_stopped(err) from None
        what = "is locked by another program" if "locked" in str(err) else f"cannot be written ({err})"
        raise ConfigError(f"tracking.uri={uri!r}: {str(path)!r} {what}; close it or choose another store") from None


@lru_cache(maxsize=8)
def client(uri: str) -> Any:
    """One MlflowClient per store and process: opening (and migrating) a store is the slow part."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from mlflow.tracking import MlflowClient

    seed_sqlite(uri)
    return MlflowClient(tracking_uri=uri)




def seed_sqlite(uri: str) -> bool:
    """Start a new local SQLite store as a copy of an empty one (see ``sweeps.tracking.seed``);
    True when it seeded the store."""
    path = local_store_path(uri)
    return path is not None and seed.seed_file(path)


def plain_experiment_id(uri: str, name: str, artifact_root: Optional[str] = None) -> str:
    """Get or create the experiment ``name`` through MLflow (``sweeps.tracking.runs.experiment_id``
    does it in bulk where it may). For a local store its artifacts go under ``artifact_root``
    (not MLflow's default ./mlartifacts in whatever directory you stand in)."""
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


def plain_set_status(uri: str, run_id: str, status: str) -> None:
    """End a run with ``status`` (FINISHED, FAILED, KILLED) through MLflow's API."""
    client(uri).set_terminated(run_id, status=status)


_LOCATIONS: dict[tuple[str, str], str] = {}  # (uri, experiment id) -> its artifact location


def remember_location(uri: str, exp_id: str, location: str) -> None:
    """An experiment's artifact location, as read or written in bulk (MLflow not asked)."""
    _LOCATIONS[(uri, exp_id)] = location


def artifact_location(uri: str, exp_id: str) -> str:
    if (uri, exp_id) not in _LOCATIONS:
        _LOCATIONS[(uri, exp_id)] = client(uri).get_experiment(exp_id).artifact_location
    return _LOCATIONS[(uri, exp_id)]


def local_artifacts(uri: str, exp_id: str, run_id: str) -> Optional[Path]:
    """The run's artifact folder when the experiment keeps artifacts on this file system."""
    folder = local_folder(artifact_location(uri, exp_id)) if exp_id else None
    return folder / run_id / "artifacts" if folder is not None else None


def local_folder(location: str) -> Optional[Path]:
    """The folder of a ``file:`` URI or a plain path, as MLflow reads one
    (mlflow.utils.file_utils.local_file_uri_to_path); None for any other scheme (mlflow-artifacts:/,
    s3://, ...: those go through MLflow)."""
    from urllib.request import url2pathname

    parts = urlsplit(location)
    if not location or parts.scheme not in ("", "file"):
        return None
    return Path(url2pathname(parts.path if parts.scheme == "file" else location))


def write_texts(uri: str, exp_id: str, run_id: str, texts: Mapping[str, str], remote_ok: bool) -> bool:
    """Write text artifacts: straight into a local artifact folder (MLflow's local artifact
    repository does the same, with more steps), else through the client when ``remote_ok``
    (the run must exist). Returns False when some were left for a later call."""
    if not texts:
        return True
    local = local_artifacts(uri, exp_id, run_id)
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


def clean(value: Any, limit: int) -> str:
    """A param or tag value as stored: text, credentials scrubbed, cut to MLflow's limit."""
    return scrub(str(value))[:limit]


def now_ms() -> int:
    return int(time.time() * 1000)


def chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def per_step(rows: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """A metric's (step, value) history in step order, from its rows sorted by step and, within
    a step, in the order logged: the last value per step (an epoch a resumed run logged again).
    But several values all at one step were logged without steps (``mlflow.log_metric``'s step
    defaults to 0), one per epoch: they are the curve, in the order logged, at steps 0, 1, ..."""
    if len(rows) > 1 and all(step == rows[0][0] for step, _ in rows):
        return [(i, value) for i, (_, value) in enumerate(rows)]
    last: dict[int, float] = {}
    for step, value in rows:
        last[step] = value
    return list(last.items())


def metric_value(v: float) -> float:
    # MLflow stores NaN as such; +-inf become the largest finite doubles, which the UI can plot.
    return v if not math.isinf(v) else math.copysign(1.7976931348623157e308, v)


_last_ms = 0


def clock() -> int:
    """Milliseconds since the epoch, strictly increasing in this process: the timestamp of
    a run's metrics. Distinct timestamps keep MLflow's metric index (key, timestamp, step,
    run) appending at the end instead of inserting all over it: 2-3x faster bulk writes."""
    global _last_ms
    _last_ms = max(now_ms(), _last_ms + 1)
    return _last_ms
