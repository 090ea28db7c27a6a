"""``hydra/sweeper=grid`` (the project's default): Hydra's basic sweeper with a cheaper check
before each batch. Same jobs in the same order, the same errors before any job starts, and
one composition per set of config-group choices instead of one per job."""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper

from hydra_plugins.sweeps_grid_sweeper.grid_sweeper import GridSweeper
from sweeps.config import config_dir
from sweeps.config import register_configs

GRID = ["optimizer=sgd,adam", "optimizer.lr=0.01,0.1,1.0", "train.zero_grad=true,false", "train.epochs=5"]


def test_discovery() -> None:
    assert GridSweeper.__name__ in [x.__name__ for x in Plugins.instance().discover(Sweeper)]


@pytest.fixture
def hydra_app(hydra_restore_singletons, tmp_path, monkeypatch):
    """Run a multirun of a task that records its overrides, with tracking off (the task is
    not the sweeps task: every job goes through Hydra's run_job). Counts compositions."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        hydra = GlobalHydra.instance().hydra
        loads = []
        real = type(hydra.config_loader).load_sweep_config

        def counting(self, master_config, sweep_overrides):
            loads.append(list(sweep_overrides))
            return real(self, master_config, sweep_overrides)

        monkeypatch.setattr(type(hydra.config_loader), "load_sweep_config", counting)

        def run(sweeper, *overrides):
            seen = []
            loads.clear()
            hydra.multirun(config_name="config", task_function=lambda cfg: seen.append(
                (cfg.optimizer.name, cfg.optimizer.lr, cfg.train.zero_grad)),
                overrides=[f"hydra/sweeper={sweeper}", "hydra/launcher=vectorized",
                           "~hydra.callbacks.tracker", "tracking.enabled=false",
                           f"hydra.sweep.dir={tmp_path / sweeper}", *overrides],
                with_log_configuration=False)
            return seen, list(loads)

        yield run
    GlobalHydra.instance().clear()


def test_same_jobs_as_the_basic_sweeper_with_fewer_compositions(hydra_app):
    grid, grid_loads = hydra_app("grid", *GRID)
    basic, basic_loads = hydra_app("basic", *GRID)
    assert grid == basic and len(grid) == 12
    assert grid[0] == ("sgd", 0.01, True) and grid[-1] == ("adam", 1.0, False)
    # basic: every job composed to check it, then once per optimizer by the launcher;
    # grid: once per optimizer in all (the launcher reuses the sweeper's compositions)
    assert len(basic_loads) == 12 + 2
    assert sorted(map(tuple, grid_loads)) == [("optimizer=adam",), ("optimizer=sgd",)]


@pytest.mark.parametrize("bad, match", [
    ("optimizer.no_such_key=1,2", "no_such_key"),
    ("optimizer=sgd,no_such_optimizer", "no_such_optimizer"),
    ("train.epochs=5,many", "train.epochs"),
])
def test_a_bad_job_stops_the_sweep_before_any_job_runs(hydra_app, bad, match):
    errors = {}
    for sweeper in ("grid", "basic"):
        with pytest.raises(Exception, match=match) as info:
            hydra_app(sweeper, "optimizer.lr=0.01,0.1", bad)
        errors[sweeper] = (type(info.value), str(info.value))
    assert errors["grid"] == errors["basic"]
