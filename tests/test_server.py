"""Slow end-to-end: sweeps against a real team tracking server (``mlflow server`` on PostgreSQL,
artifacts proxied by the server), and a server that goes away mid-sweep. The store is read back
only through the server's HTTP API, as from another machine: no shared disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import run_cli
from servers import Postgres, mlflow_server, pg_bin_dir, postgres, start_mlflow_server

pytestmark = pytest.mark.slow

SYMPTOMS = {"healthy", "diverged", "stalled", "oscillating", "overfitting"}


@pytest.fixture
def pg(tmp_path) -> Postgres:
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in "
                    "/usr/lib/postgresql/*/bin; `apt-get install postgresql` (as .ci/run does)")
    with postgres(bin_dir, tmp_path) as db:
        yield db


def _sweep_runs(c: MlflowClient, experiment: str):
    exp = c.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r}"
    runs = c.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("sweeps.role") == "parent"]
    return exp, parents, [r for r in runs if r.data.tags.get("sweeps.role") == "child"]


def test_parallel_sweep_against_postgres_server(pg, tmp_path):
    artifacts = tmp_path / "server-artifacts"
    out = tmp_path / "out"
    with mlflow_server(pg.uri, artifacts, tmp_path / "server.log") as server:
        t0 = time.perf_counter()
        proc = run_cli(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                        "optimizer=sgd,adam", "optimizer.lr=0.01,1.0", "train.epochs=30",
                        f"tracking.uri={server.uri}", f"paths.output_dir={out}"], tmp_path)
        sweep_s = time.perf_counter() - t0
        assert "4 jobs" in proc.stdout and "4 finished, 0 failed" in proc.stdout, proc.stdout
        assert f"store: {server.uri} (experiment 'adhoc')" in proc.stdout

        c = MlflowClient(server.uri)
        exp, parents, kids = _sweep_runs(c, "adhoc")
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        assert len(kids) == 4 and all(r.info.status == "FINISHED" for r in kids)
        assert {r.data.tags["mlflow.parentRunId"] for r in kids} == {parents[0].info.run_id}
        grid = {(r.data.params["optimizer"], float(r.data.params["optimizer.lr"])) for r in kids}
        assert grid == {(o, lr) for o in ("sgd", "adam") for lr in (0.01, 1.0)}
        for r in kids:
            assert r.data.tags["symptom"] in SYMPTOMS, r.data.tags
            assert "tracking.uri" not in r.data.params  # where the store is never goes into it
            hist = c.get_metric_history(r.info.run_id, "train_loss")
            n = int(r.data.tags["sweeps.epochs_run"])
            assert [m.step for m in sorted(hist, key=lambda m: m.step)] == list(range(n))
            assert n == 30 or r.data.tags["sweeps.stop_reason"] == "non_finite"
            assert len(c.get_metric_history(r.info.run_id, "val_loss")) == n

        kid = kids[0]
        assert {"config.yaml", "hydra"} <= {a.path for a in c.list_artifacts(kid.info.run_id)}
        got = Path(c.download_artifacts(kid.info.run_id, "config.yaml", str(tmp_path / "dl")))
        assert f"lr: {kid.data.params['optimizer.lr']}" in got.read_text()

        t1 = time.perf_counter()
        run_cli(["--tracking-uri", server.uri, "--output-root", str(tmp_path / "analysis")],
                tmp_path, module="sweeps.analyze")
        analyze_s = time.perf_counter() - t1
        logged = {a.path for a in c.list_artifacts(parents[0].info.run_id, "analysis")}
        assert "analysis/labels.csv" in logged
        pngs = {p for p in logged if p.endswith(".png")}
        assert {"analysis/loss_curves_linear.png", "analysis/symptom_map_linear.png"} <= pngs
        print(f"sweep {sweep_s:.1f} s, analyze {analyze_s:.1f} s")

        # No shared disk: artifacts go through the server (mlflow-artifacts:/, proxied to
        # --artifacts-destination), so a job on another machine can log them and anyone can fetch
        # them. Nothing may land in the client's outputs folder.
        assert exp.artifact_location.startswith("mlflow-artifacts:"), exp.artifact_location
        assert not (out / "mlartifacts").exists()
        assert list(artifacts.rglob(f"{kid.info.run_id}/artifacts/config.yaml"))
        assert list(artifacts.rglob(f"{parents[0].info.run_id}/artifacts/analysis/labels.csv"))


# --- the server goes away mid-sweep --------------------------------------------------------------

# 8 grid points of a second or two each, metrics flushed to the server while they train: the
# server is stopped while a run is half-written.
OUTAGE_GRID = ["-m", "optimizer=sgd,adam", "optimizer.lr=0.01,0.1", "train.zero_grad=true,false",
               "train.epochs=1000", "tracking.flush_every_s=0.2"]
OUTAGE_LIMIT_S = 60  # the CLI must give up within this, not hang on MLflow's retries


def _children(c: MlflowClient) -> list:
    exp = c.get_experiment_by_name("adhoc")
    if exp is None:
        return []
    return [r for r in c.search_runs([exp.experiment_id], max_results=1000)
            if r.data.tags.get("sweeps.role") == "child"]


def _mid_sweep(c: MlflowClient) -> bool:
    """A run has finished and another is RUNNING with some epochs already stored."""
    kids = _children(c)
    return any(r.info.status == "FINISHED" for r in kids) and any(
        r.info.status == "RUNNING" and "train_loss" in r.data.metrics for r in kids)


def test_server_outage_fails_fast_and_relaunch_completes(tmp_path):
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    artifacts, log = tmp_path / "server-artifacts", tmp_path / "server.log"
    server = start_mlflow_server(backend, artifacts, log)
    port = server.port
    args = [*OUTAGE_GRID, f"tracking.uri={server.uri}", f"paths.output_dir={tmp_path / 'out'}"]
    gaps = []  # product behaviour still missing (reported); the relaunch below is checked anyway
    try:
        proc = subprocess.Popen([sys.executable, "-m", "sweeps", *args], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        c = MlflowClient(server.uri)
        end = time.monotonic() + 120
        while not _mid_sweep(c):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < end, "no run finished and another half-written in 120 s"
            time.sleep(0.1)
        server.stop()
        stopped = time.monotonic()
        try:
            _, err = proc.communicate(timeout=OUTAGE_LIMIT_S + 60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            pytest.fail(f"the CLI still ran {OUTAGE_LIMIT_S + 60} s after the server stopped:\n"
                        f"{err[-3000:]}")
        waited = time.monotonic() - stopped
        assert proc.returncode not in (0, None)
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        if waited >= OUTAGE_LIMIT_S:
            gaps.append(f"gave up {waited:.0f} s after the server stopped "
                        f"(limit {OUTAGE_LIMIT_S} s)")
        if "Traceback" in err:
            last = (err.strip().splitlines() or [""])[-1]
            gaps.append(f"a Python traceback on stderr, ending: {last[:300]}")
        elif len(errors) != 1 or err.strip().splitlines()[-1] != errors[0]:
            gaps.append(f"not one closing 'error:' line on stderr: {errors}")
        elif f"127.0.0.1:{port}" not in errors[0] or "unreachable" not in errors[0]:
            gaps.append(f"the error does not name the unreachable server: {errors[0][:300]}")

        # Same port, same backend: the relaunch marks KILLED what the dead CLI left RUNNING and
        # runs only the grid points that did not finish.
        server = start_mlflow_server(backend, artifacts, log, port=port)
        c = MlflowClient(server.uri)
        finished_before = sum(r.info.status == "FINISHED" for r in _children(c))
        assert 1 <= finished_before < 8
        again = run_cli(args, tmp_path)
        assert "0 failed" in again.stdout, again.stdout
        assert f"{finished_before} skipped" in again.stdout, again.stdout
        exp = c.get_experiment_by_name("adhoc")
        runs = c.search_runs([exp.experiment_id], max_results=1000)
        assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
        kids = [r for r in runs if r.data.tags.get("sweeps.role") == "child"]
        done = Counter(r.data.tags["sweeps.config_hash"] for r in kids
                       if r.info.status == "FINISHED")
        assert len(done) == 8 and set(done.values()) == {1}, done
        # the failed launch's parent, left RUNNING by a dead process, was marked KILLED
        parents = [r for r in runs if r.data.tags.get("sweeps.role") == "parent"]
        assert sorted(r.info.status for r in parents) == ["FINISHED", "KILLED"], \
            [(r.info.run_name, r.info.status) for r in parents]
    finally:
        server.stop()
    assert not gaps, "; ".join(gaps)


def test_histories_read_in_bulk_from_a_server_equal_what_was_logged(tmp_path, monkeypatch):
    """The analysis reads many runs' histories from a server a key and 100 runs per request;
    what it returns is what was logged: every step, the last value logged at a step (values all
    logged at one step, without steps: in the order logged), NaN kept,
    runs without the key absent; and an answer cut at the server's limit is asked again in
    smaller chunks (the limit lowered here so a few runs reach it); a server that does not
    answer the route is read run by run."""
    import math

    from sweeps import tracking
    from sweeps.tracking import server as srv

    with mlflow_server(f"sqlite:///{tmp_path / 'srv.db'}", tmp_path / "art", tmp_path / "log") as s:
        c = MlflowClient(s.uri)
        exp = c.create_experiment("bulk")
        logged: dict[tuple[str, str], list[tuple[int, float]]] = {}
        ids = []
        for k in range(5):
            run = c.create_run(exp).info.run_id
            ids.append(run)
            loss = [(step, 1.0 / (step + k + 1)) for step in range(7 + k)]
            if k == 1:
                loss[3] = (3, math.nan)
            for step, v in loss:
                c.log_metric(run, "loss", v, step=step, timestamp=1000 + step)
            if k == 2:  # logged again at step 4, later: the later value counts
                c.log_metric(run, "loss", 42.0, step=4, timestamp=5000)
                loss[4] = (4, 42.0)
            logged[(run, "loss")] = loss
            if k != 3:
                c.log_metric(run, "acc", 0.5 + k, step=0, timestamp=1000)
                logged[(run, "acc")] = [(0, 0.5 + k)]
            if k == 0:  # logged without a step (all at step 0): the curve, in the order logged
                for i in range(6):
                    c.log_metric(run, "nostep", 2.0 - 0.1 * i, step=0, timestamp=2000 + i)
                logged[(run, "nostep")] = [(i, 2.0 - 0.1 * i) for i in range(6)]
        # (a server without the route: 404, read run by run as before)
        for limit, route in ((srv.BULK_VALUES, srv.BULK_ROUTE), (12, srv.BULK_ROUTE),
                             (srv.BULK_VALUES, "/ajax-api/2.0/mlflow/metrics/no-such-route")):
            monkeypatch.setattr(srv, "BULK_VALUES", limit)
            monkeypatch.setattr(srv, "BULK_ROUTE", route)
            got = tracking.histories(s.uri, ids, ["loss", "acc", "nostep"])
            assert set(got) == set(logged)
            for pair, want in logged.items():
                have = got[pair]
                assert [st for st, _ in have] == [st for st, _ in want]
                assert all((math.isnan(a) and math.isnan(b)) or a == b
                           for (_, a), (_, b) in zip(have, want)), (pair, have, want)
