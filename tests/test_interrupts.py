"""Ctrl-C always stops a sweep: SIGINT sent at ten moments of a sweep (while importing, composing,
training in a batched program or one job at a time, between jobs, writing a bulk chunk, drawing
the plots), beside a process that burns a CPU. Each launch ends with exit 130, nothing RUNNING
and the parent KILLED, and the same command then completes every grid point exactly once."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import run_cli
from test_resume import _statuses

pytestmark = pytest.mark.slow

GRID = ["-m", "optimizer=sgd,adam,rmsprop", "optimizer.lr=0.01,0.1", "train.zero_grad=true,false",
        "train.epochs=2000"]
POINTS = 12
# (launcher, share of a whole launch's duration at which SIGINT is sent)
MOMENTS = [("vectorized", f) for f in (0.05, 0.2, 0.35, 0.5, 0.6, 0.7, 0.85)] + \
          [("basic", f) for f in (0.3, 0.55, 0.8)]


@pytest.fixture(scope="module")
def burner():
    """A process that keeps one CPU busy for the whole module."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield proc
    proc.kill()
    proc.wait()


def _args(launcher: str, out: Path) -> list[str]:
    return [*GRID, f"hydra/launcher={launcher}", f"paths.output_dir={out}"]


def _launch(launcher: str, tmp: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweeps", *_args(launcher, tmp / "out")], cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _complete(store: Path) -> None:
    rows = _statuses(store)
    assert not [r for r in rows if r[0] == "RUNNING"], rows
    done = Counter(h for s, role, h in rows if s == "FINISHED" and role == "child")
    assert len(done) == POINTS and set(done.values()) == {1}, done


@pytest.fixture(scope="module")
def durations(tmp_path_factory, burner) -> dict[str, float]:
    """How long a whole launch takes here, now, per launcher (and proof that it completes): the
    shorter of two, as the first pays for cold caches and the moments must fall inside a launch."""
    out: dict[str, float] = {}
    for launcher in ("vectorized", "basic"):
        for _ in range(2):
            tmp = tmp_path_factory.mktemp(f"whole-{launcher}")
            start = time.monotonic()
            run_cli(_args(launcher, tmp / "out"), tmp)
            out[launcher] = min(out.get(launcher, math.inf), time.monotonic() - start)
            _complete(tmp / "out" / "mlflow.db")
    return out


@pytest.mark.parametrize("launcher, share", MOMENTS)
def test_sigint_at_any_moment_stops_and_the_relaunch_completes(tmp_path, durations, launcher, share):
    proc = _launch(launcher, tmp_path)
    time.sleep(durations[launcher] * share)
    if proc.poll() is not None:  # finished before the moment came: nothing to interrupt
        out, err = proc.communicate()
        assert proc.returncode == 0, err
        pytest.skip(f"the launch ended before {share:.0%} of its usual duration")
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole process group
    out, err = proc.communicate(timeout=120)
    store = tmp_path / "out" / "mlflow.db"
    if proc.returncode == 0 and "12 finished" in out:  # the summary was out: it was exiting
        _complete(store)
        pytest.skip(f"the launch was exiting at {share:.0%} of its usual duration")
    assert proc.returncode == 130, f"exit {proc.returncode}\n{out}\n{err}"
    assert err.rstrip().endswith("error: interrupted"), err
    rows = _statuses(store)
    assert not [r for r in rows if r[0] == "RUNNING"], rows
    finished = {h for s, role, h in rows if s == "FINISHED" and role == "child"}
    if len(finished) < POINTS:  # cut short: the sweep itself ends KILLED
        assert all(s == "KILLED" for s, role, _ in rows if role == "parent"), rows
    again = run_cli(_args(launcher, tmp_path / "out"), tmp_path)
    assert f"{POINTS} jobs" in again.stdout
    _complete(store)
