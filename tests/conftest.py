"""Shared helpers: compose configs from the real conf/, and run the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from sweeps.config import config_dir
from sweeps.config import register_configs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def make_cfg():
    """Compose the project's config with overrides, as Hydra would for one job."""
    register_configs()

    def _make(*overrides: str, with_hydra: bool = False):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return compose("config", overrides=list(overrides), return_hydra_config=with_hydra)

    yield _make
    GlobalHydra.instance().clear()


def run_cli(args: list[str], cwd: Path, check: bool = True, env: dict | None = None,
            module: str = "sweeps") -> subprocess.CompletedProcess:
    """Run ``python -m <module> args`` in ``cwd`` with outputs under ``cwd/out``."""
    full_env = {**os.environ, "MLFLOW_TRACKING_URI": "", **(env or {})}
    full_env.pop("MLFLOW_TRACKING_URI") if not full_env["MLFLOW_TRACKING_URI"] else None
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=full_env,
        capture_output=True, text=True, timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture
def cli(tmp_path):
    """Run the real ``sweeps`` CLI with every output under tmp_path."""

    def _run(*args: str, check: bool = True, env: dict | None = None):
        # comparison plots at the end of each sweep cost seconds; tests that want them say so
        flags = [a for a in args if a.startswith("-")]
        rest = [a for a in args if not a.startswith("-")]
        return run_cli([*flags, "sweep.plots=false", *rest, f"paths.output_dir={tmp_path / 'out'}"],
                       tmp_path, check=check, env=env)

    _run.store = tmp_path / "out" / "mlflow.db"
    _run.uri = f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    return _run
