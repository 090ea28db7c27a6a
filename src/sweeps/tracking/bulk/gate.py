"""When the bulk path may be taken and how it reaches the store: a local SQLite store file whose
schema (alembic revision, read with sqlite3) is one this project was tested against, and not with
SWEEPS_PLAIN_LOGGING=1. Everything else (a tracking server, another database, an untested
schema) goes through MLflow's public API."""

from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from sweeps import stopping
from sweeps.tracking.store import local_store_path

log = logging.getLogger(__name__)

# Alembic revisions of MLflow's schema that the bulk path was tested against (CI: mlflow 3.17.2).
TESTED_REVISIONS = frozenset({"dc11669786a5"})
ACTIVE = "active"  # MLflow's LifecycleStage.ACTIVE
WORKSPACE = "default"  # MLflow's workspace when none is chosen
LOCK_WAIT_S = 30  # how long a statement waits for another process's write lock
CHUNK = 500  # run ids per query (old SQLite builds allow 999 variables per statement)


@dataclass(frozen=True)
class Store:
    """A local SQLite store the bulk path may read and write."""

    path: Path


_checked: dict[Path, Optional[str]] = {}  # store file -> its revision (a schema is not downgraded)


def store_for(uri: str) -> Optional[Store]:
    """The store behind ``uri`` when the bulk path may read and write it, else None."""
    if os.environ.get("SWEEPS_PLAIN_LOGGING"):
        return None
    path = local_store_path(uri)
    if path is None or not path.is_file():
        return None
    if path not in _checked:
        revision = schema_revision(path)
        if revision is None:
            return None  # not an MLflow store yet (being created): asked again next time
        _checked[path] = revision
        if revision not in TESTED_REVISIONS:
            log.info("store schema %s is not one sweeps was tested with: writing through MLflow's API",
                     revision)
    return Store(path) if _checked[path] in TESTED_REVISIONS else None


def schema_revision(path: Path) -> Optional[str]:
    """The alembic revision of a SQLite store's schema (None: no MLflow schema there)."""
    try:
        with _connect(path) as db:
            row = db.execute("select version_num from alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    # autocommit mode: reads take no lock beyond their statement, writes say when they begin
    db = sqlite3.connect(path, timeout=LOCK_WAIT_S, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


@contextmanager
def reading(store: Store) -> Iterator[sqlite3.Connection]:
    """A connection for reads, each statement seeing committed data."""
    with _connect(store.path) as db:
        yield db


@contextmanager
def writing(store: Store) -> Iterator[sqlite3.Connection]:
    """One transaction: the write lock is taken at once (``begin immediate``: no deadlock between
    two processes that read first and then want to write), all of it committed or none."""
    with _connect(store.path) as db:
        try:
            db.execute("begin immediate")
        except sqlite3.OperationalError as err:
            if stopping.is_stop(err):  # a signal cut the wait for the lock short
                raise stopping.as_stopped(err) from None
            raise
        try:
            yield db
        except BaseException:
            if db.in_transaction:  # (a failed statement may have ended it already)
                db.execute("rollback")
            raise
        db.execute("commit")


def marks(values: Iterable[Any]) -> str:
    """``?, ?, ...``: one placeholder per value, for ``in (...)``."""
    return ",".join("?" for _ in values)
