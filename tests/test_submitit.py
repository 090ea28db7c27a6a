"""Hydra's submitit launcher (hydra-submitit-launcher 1.2.0): its configs compose with ours, and
a sweep run by ``submitit_local`` (each job its own process, as on a SLURM node) records one child
run per job, under one parent, in a real ``mlflow server``."""

from __future__ import annotations

import os
import socket
from importlib.metadata import version

import pytest
from mlflow.tracking import MlflowClient

from conftest import run_cli
from servers import mlflow_server

PLUGIN = "hydra_plugins.hydra_submitit_launcher.submitit_launcher"


def test_plugin_versions():
    assert version("hydra-submitit-launcher") == "1.2.0"
    assert version("hydra-core") == "1.3.8"


@pytest.mark.parametrize("overrides, expected", [
    (["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],
     {"_target_": f"{PLUGIN}.LocalLauncher", "timeout_min": 10}),
    # The SLURM recipe of docs/scaling-out.md: partition, wall time and GPUs per job.
    (["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
      "hydra.launcher.timeout_min=30", "hydra.launcher.gpus_per_node=1",
      "hydra.launcher.cpus_per_task=4", "hydra.launcher.mem_gb=8",
      "hydra.launcher.array_parallelism=32"],
     {"_target_": f"{PLUGIN}.SlurmLauncher",
      "partition": "gpu", "timeout_min": 30, "gpus_per_node": 1, "cpus_per_task": 4, "mem_gb": 8,
      "array_parallelism": 32}),
])
def test_submitit_launcher_configs_compose(make_cfg, overrides, expected):
    cfg = make_cfg(*overrides, with_hydra=True)
    launcher = cfg.hydra.launcher
    assert {k: launcher[k] for k in expected} == expected
    # each job's pickled call and logs go beside the sweep
    assert launcher.submitit_folder == f"{cfg.hydra.sweep.dir}/.submitit/%j"


@pytest.mark.slow
def test_submitit_local_sweep_against_server(tmp_path):
    out = tmp_path / "out"
    with mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server-artifacts",
                       tmp_path / "server.log") as server:
        proc = run_cli(["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                        "optimizer.lr=0.01,0.1", "train.epochs=20", f"tracking.uri={server.uri}",
                        f"paths.output_dir={out}"], tmp_path)
        assert "2 jobs" in proc.stdout and "2 finished, 0 failed" in proc.stdout, proc.stdout

        c = MlflowClient(server.uri)
        exp = c.get_experiment_by_name("adhoc")
        runs = c.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("sweeps.role") == "parent"]
    kids = [r for r in runs if r.data.tags.get("sweeps.role") == "child"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(kids) == 2 and all(r.info.status == "FINISHED" for r in kids)
    assert {r.data.tags["mlflow.parentRunId"] for r in kids} == {parents[0].info.run_id}
    assert sorted(float(r.data.params["optimizer.lr"]) for r in kids) == [0.01, 0.1]
    for r in kids:
        assert r.data.tags["sweeps.host"] == socket.gethostname()
        assert r.data.tags["sweeps.device"].split(":")[0] in ("cpu", "cuda", "mps")
        assert r.data.tags["symptom"]
    # Each job ran in a process of its own, not in the launching one (which holds the parent).
    launcher_pid = parents[0].data.tags["sweeps.pid"]
    job_pids = {r.data.tags["sweeps.pid"] for r in kids}
    assert launcher_pid not in job_pids and len(job_pids) == 2
    assert str(os.getpid()) not in job_pids
    # submitit's own files (pickled job, stdout/stderr per job) sit beside the sweep.
    assert len(list(out.glob("sweeps/adhoc/*/.submitit/*/*_result.pkl"))) == 2
