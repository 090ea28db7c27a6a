"""A sweep's plots finished by a helper process after the command returns: they land on the
parent run, the parent's description names them, and a re-run or ``sweeps-analyze`` waits for
the helper's lock instead of racing it. The real CLI in a subprocess, a real SQLite store."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweeps.plots.background import holding, wait_for_plots

GRID = ["-m", "optimizer=sgd,adam", "optimizer.lr=0.03,5.0", "train.epochs=40"]
MORE = ["-m", "optimizer=sgd,adam", "optimizer.lr=0.03,5.0,0.3", "train.epochs=40"]  # 2 new runs
PNGS = {"loss_curves_linear.png", "symptom_map_linear.png", "fitted_line.png"}


def _parent(uri: str):
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("adhoc")
    (parent,) = c.search_runs([exp.experiment_id], "tags.`sweeps.role` = 'parent'")
    return c, parent


def _logged(c, run_id: str) -> set[str]:
    return {Path(a.path).name for a in c.list_artifacts(run_id, "analysis")}


def test_the_sweep_returns_before_its_plots_which_then_land_on_the_parent_run(cli):
    proc = cli(*GRID, "sweep.plots=true")
    plot_dir = cli.store.parent / "adhoc" / "analysis"
    assert f"plots: {plot_dir} (being drawn in the background" in proc.stdout
    wait_for_plots(plot_dir)
    assert PNGS <= {p.name for p in plot_dir.glob("*.png")}
    c, parent = _parent(cli.uri)
    assert parent.info.status == "FINISHED"
    assert PNGS | {"labels.csv"} <= _logged(c, parent.info.run_id)
    note = parent.data.tags["mlflow.note.content"]
    assert all(f"`{name}`" in note for name in PNGS)  # the description names the images
    assert parent.data.tags["sweeps.plots"] == str(plot_dir.resolve())
    images = {Path(a.path).name.split("+")[0] for a in c.list_artifacts(parent.info.run_id, "images")}
    assert {"symptom_map_linear", "loss_curves_linear"} <= images  # shown under "Model metrics"
    assert c.get_metric_history(parent.info.run_id, "runs/healthy")[0].step == 0
    assert len(c.get_metric_history(parent.info.run_id, "runs/healthy")) == 1  # logged once


@pytest.mark.parametrize("how", ["config", "slurm"])
def test_wait_for_plots_returns_with_them_written_and_logged(cli, how):
    """Asked for, or inside a Slurm job (whose end would kill a helper left behind)."""
    if how == "config":
        proc = cli(*GRID, "sweep.plots=true", "sweep.wait_for_plots=true")
    else:
        proc = cli(*GRID, "sweep.plots=true", env={"SLURM_JOB_ID": "4242"})
    plot_dir = cli.store.parent / "adhoc" / "analysis"
    assert f"plots: {plot_dir} (also artifacts of the sweep's parent run)" in proc.stdout
    assert PNGS <= {p.name for p in plot_dir.glob("*.png")}  # no waiting here
    c, parent = _parent(cli.uri)
    assert PNGS <= _logged(c, parent.info.run_id)


def _lines_until(stream, needle: str, seen: list[str]) -> None:
    for line in stream:
        seen.append(line)
        if needle in line:
            return


def _wait_for_line(proc: subprocess.Popen, stream, needle: str, timeout: float) -> list[str]:
    seen: list[str] = []
    reader = threading.Thread(target=_lines_until, args=(stream, needle, seen), daemon=True)
    reader.start()
    reader.join(timeout)
    assert any(needle in ln for ln in seen), f"no {needle!r} in: {''.join(seen)}"
    return seen


def test_a_rerun_and_sweeps_analyze_wait_for_the_plots_being_written(cli, tmp_path):
    """While another process holds the analysis folder (as the helper of a sweep that has just
    returned does), neither a re-run of the sweep nor sweeps-analyze writes there: each says it
    waits, and goes on once the folder is free."""
    cli(*GRID, "sweep.plots=true", "sweep.wait_for_plots=true")
    out = tmp_path / "out"
    plot_dir = out / "adhoc" / "analysis"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    for module, args in [
        ("sweeps", [*MORE, "sweep.plots=true", f"paths.output_dir={out}"]),
        ("sweeps.analyze", ["--output-root", str(out), "--experiment", "adhoc", "--show", "0"]),
    ]:
        with holding(plot_dir):
            stamp = (plot_dir / "labels.csv").stat().st_mtime_ns
            proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=tmp_path, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            _wait_for_line(proc, proc.stdout, "waiting for the plots still being written", 120)
            time.sleep(1.0)  # it would have written by now, were it not waiting
            assert proc.poll() is None and (plot_dir / "labels.csv").stat().st_mtime_ns == stamp
        proc.communicate(timeout=300)
        assert proc.returncode == 0
        wait_for_plots(plot_dir)
        assert (plot_dir / "labels.csv").stat().st_mtime_ns != stamp  # written once it was free


def test_plots_that_cannot_be_written_say_why_in_a_log_and_on_the_parent_run(cli):
    """The analysis folder is a file: the helper fails after the command has returned; the
    reason lands in <experiment>/plots.log and in the parent's tag sweeps.plots, and the sweep
    itself is recorded as FINISHED. Waiting for the plots, the command says so itself."""
    blocked = cli.store.parent / "adhoc" / "analysis"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    proc = cli(*GRID, "sweep.plots=true")
    assert proc.returncode == 0 and "being drawn in the background" in proc.stdout
    wait_for_plots(blocked)
    log = (blocked.parent / "plots.log").read_text()
    assert "Error" in log and str(blocked) in log
    c, parent = _parent(cli.uri)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweeps.plots"].startswith("failed: ")
    again = cli(*MORE, "sweep.plots=true", "sweep.wait_for_plots=true")
    assert "plots: none (" in again.stdout and str(blocked.parent / "plots.log") in again.stdout
