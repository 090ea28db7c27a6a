"""New SQLite stores start as a copy of an empty store this MLflow version made once, instead of
running MLflow's ~60 schema migrations per store."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)


def seed_file(path: Path) -> bool:
    """Start a new local SQLite store at ``path`` as a copy of an empty one this MLflow version made before
    (kept in ~/.cache/sweeps): MLflow creates a store by running its ~60 schema migrations
    every time. The copy is what MLflow would have made, its Default experiment
    pointing where MLflow would point it from here. Returns True when it seeded the store.
    SWEEPS_NO_STORE_TEMPLATE=1 turns it off."""
    if os.environ.get("SWEEPS_NO_STORE_TEMPLATE") or path.exists() \
            or not path.parent.is_dir():
        return False
    import shutil
    import sqlite3
    import subprocess

    from importlib.metadata import version

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sweeps"
    template = cache / f"mlflow-{version('mlflow')}-empty.db"
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
            now = int(time.time() * 1000)
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
    """Where MLflow points the Default experiment of a store it creates from this process
    (./mlruns/0 from here unless a server's artifact root is set: MLflow not imported then)."""
    if "_MLFLOW_SERVER_ARTIFACT_ROOT" not in os.environ:
        return Path.cwd().joinpath("mlruns").as_posix() + "/0"
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.tracking._tracking_service.utils import _SERVER_ARTIFACT_ROOT_ENV_VAR
    from mlflow.utils.uri import append_to_uri_path, resolve_uri_if_local

    root = os.environ.get(_SERVER_ARTIFACT_ROOT_ENV_VAR, DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
    return str(append_to_uri_path(resolve_uri_if_local(root), "0"))


