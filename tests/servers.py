"""Real services for the end-to-end tests: a throwaway PostgreSQL cluster and ``mlflow server``,
each listening only on 127.0.0.1 at a free port, and stopped (their files removed) after."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 120  # a first `mlflow server` start on PostgreSQL creates its tables


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (PATH, then Debian's versioned folders)."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


@dataclass
class Postgres:
    """A running PostgreSQL cluster with one empty database for MLflow."""

    uri: str  # postgresql+psycopg2://postgres@127.0.0.1:<port>/mlflow
    port: int
    data: Path


def _service_user() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL: we do, or as root (which it refuses) ``postgres``, else ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


@contextmanager
def postgres(bin_dir: Path, tmp: Path) -> Iterator[Postgres]:
    """Start a PostgreSQL cluster; stop it and delete its files after (its log is kept in ``tmp``).

    The cluster lives in ``tmp/postgres``, except as root: it then runs as another user, who may
    not enter pytest's tmp_path (under a folder only root may enter), so it gets a temporary
    folder of its own, owned by that user.
    """
    user = _service_user()
    if user is None:
        base = tmp / "postgres"
        base.mkdir(parents=True)
    else:
        base = Path(tempfile.mkdtemp(prefix="sweeps-pg-"))
        os.chown(base, user.pw_uid, user.pw_gid)
    data, sockets, log = base / "data", base / "sockets", base / "postgres.log"
    port = free_port()
    as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(base)}

    def pg(*args: str) -> None:
        proc = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=base, env=env, check=False,
                              capture_output=True, text=True, timeout=90, **as_user)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n"
                               f"{proc.stderr}\n{_tail(log)}")

    try:
        pg("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
           "--locale=C", "--no-sync")
        sockets.mkdir()
        if user is not None:
            os.chown(sockets, user.pw_uid, user.pw_gid)
        # TCP on 127.0.0.1 only, its unix socket in our folder; no fsync: thrown away after.
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -F"
        pg("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", opts, "start")
        try:
            import psycopg2

            conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE DATABASE mlflow")
            conn.close()
            # The driver is named: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3.
            yield Postgres(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow", port, data)
        finally:
            pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        if log.exists() and user is not None:
            shutil.copy(log, tmp / "postgres.log")
        if user is not None:
            shutil.rmtree(base, ignore_errors=True)


@dataclass
class MlflowServer:
    """A running ``mlflow server`` process group (the server and its workers)."""

    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, grace_s: float = 15) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        try:  # workers may outlive their master
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


def start_mlflow_server(backend: str, artifacts: Path, log: Path, port: int | None = None,
                        workers: int = 1) -> MlflowServer:
    """Start ``mlflow server`` on 127.0.0.1 with proxied artifacts under ``artifacts``, and wait
    until ``GET /health`` answers.

    Raises:
        RuntimeError: the server exited, or did not answer within START_TIMEOUT_S (its log is
            in the message).
    """
    port = port or free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
           "--serve-artifacts", "--artifacts-destination", str(artifacts),
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # No background job runner (a pool of huey consumers the tests never use): a faster start.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=log.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = MlflowServer(proc, port, log)
    try:
        wait_healthy(server.uri, proc, log)
    except BaseException:
        server.stop()
        raise
    return server


def wait_healthy(uri: str, proc: subprocess.Popen, log: Path,
                 timeout: float = START_TIMEOUT_S) -> None:
    """Poll ``GET /health`` until it answers 200.

    Raises:
        RuntimeError: the process exited, or ``timeout`` passed (with the log's tail).
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"mlflow server at {uri} did not answer /health in {timeout} s:\n"
                       f"{_tail(log)}")


@contextmanager
def mlflow_server(backend: str, artifacts: Path, log: Path,
                  port: int | None = None) -> Iterator[MlflowServer]:
    """``start_mlflow_server`` as a context manager that always stops it."""
    server = start_mlflow_server(backend, artifacts, log, port)
    try:
        yield server
    finally:
        server.stop()
