"""The sweep's life around its jobs: check every swept value before any job starts, open the
parent run, and at the end close it and print the summary.

Hydra skips ``on_multirun_end`` when a job fails, so the CLI also calls ``finish_open_sweeps``
after Hydra returns or raises; finishing is idempotent.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sweeps import later, stopping, tracking
from sweeps.app import PARENT_FILE, store_location
from sweeps.checks import check_value, validate
from sweeps.config import ConfigError
from sweeps.loop import resolve_device
from sweeps.progress import Progress, read_marks
from sweeps.summary import (SweepResult, experiment_note, parent_metrics, parent_note, result_of,
                            summary_text, swept)

log = logging.getLogger(__name__)


@dataclass
class OpenSweep:
    """A multirun whose parent run is still RUNNING."""

    uri: str
    experiment: str
    experiment_id: str
    parent_id: str
    sweep_dir: str
    started: float = field(default_factory=time.perf_counter)
    progress: Optional[Progress] = None
    output_dir: str = "outputs"
    plots: bool = True
    wait_for_plots: bool = False
    drawer: Any = None  # the warm plot process (sweeps.later), when plots are on


# Sweeps opened by this process, in order. Only the CLI process's callbacks touch it.
_OPEN: list[OpenSweep] = []


def check_sweep_values(config: DictConfig) -> None:
    """Check the composed base config and every value of every swept key, all at once.

    Raises:
        ConfigError: listing each value that is not allowed (``key=value: must be ...``).
    """
    problems: list[str] = []
    try:
        validate(config)
    except ConfigError as err:
        problems.append(str(err))
    # Jobs of a cluster launcher run on other machines: whether CUDA is there is theirs to check.
    remote = "submitit" in str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
    parser = OverridesParser.create()
    for ov in parser.parse_overrides(list(config.hydra.overrides.task)):
        key = ov.key_or_group
        values = list(ov.sweep_iterator()) if ov.is_sweep_override() else [ov.value()]
        if not values:
            problems.append(f"{ov.input_line}: this sweep has no values, so the grid has zero points; "
                            "give at least one value")
        for value in values:
            problem = check_value(key, value)
            if problem is None and key == "train.device" and not remote:
                try:
                    resolve_device(str(value))
                except ConfigError as err:
                    problem = str(err)
            if problem and problem not in problems:
                problems.append(problem)
    if problems:
        raise ConfigError("; ".join(problems))


def count_jobs(config: DictConfig) -> Optional[int]:
    """Number of jobs of a grid sweep (the product of the swept values' counts), or None when
    the sweeper is not a grid."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.utils import get_class

    try:
        grid = issubclass(get_class(str(OmegaConf.select(config, "hydra.sweeper._target_"))), BasicSweeper)
    except Exception:  # noqa: BLE001 - an unknown sweeper: no total shown
        grid = False
    if not grid:
        return None
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    items = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    total = 1
    seen = set()
    for ov in reversed(OverridesParser.create().parse_overrides(items)):  # later ones win
        if ov.key_or_group in seen:
            continue
        seen.add(ov.key_or_group)
        if ov.is_sweep_override():
            total *= len(list(ov.sweep_iterator()))
    return total


class AbortSweep(BaseException):
    """Stops a multirun from its start callback. Hydra turns an Exception raised in a callback
    into a warning and goes on, so this derives from BaseException; the CLI reports its cause."""


class SweepCallback(Callback):
    """Registered in conf/config.yaml under hydra.callbacks."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._start(config)
        except Exception as err:
            raise AbortSweep(str(err)) from err

    def _start(self, config: DictConfig) -> None:
        check_sweep_values(config)
        if not config.tracking.enabled:
            return
        uri, experiment, artifacts = store_location(config)
        tracking.check_writable(uri)
        exp_id = tracking.experiment_id(uri, experiment, str(artifacts))
        repaired = tracking.repair_stale(uri, exp_id)
        if repaired:
            log.warning("marked %d run(s) KILLED that a dead process had left RUNNING", repaired)
        done = tracking.finished_configs(uri, exp_id) if config.sweep.resume else {}
        sweep_dir = Path(config.hydra.sweep.dir)
        overrides = tracking.scrub(" ".join(config.hydra.overrides.task))
        with stopping.deferred():  # a stop in between would leave a RUNNING parent nobody closes
            parent = tracking.start_parent(
                uri, exp_id, f"{config.sweep.name} {sweep_dir.name}",
                {tracking.TAG_ROLE: "parent", tracking.TAG_SWEEP_DIR: str(sweep_dir.resolve()),
                 "sweeps.sweep": config.sweep.name, "sweeps.overrides": overrides},
            )
            sweep = OpenSweep(uri, experiment, exp_id, parent, str(sweep_dir),
                              output_dir=str(config.paths.output_dir),
                              plots=bool(config.sweep.plots),
                              wait_for_plots=bool(config.sweep.wait_for_plots))
            _OPEN.append(sweep)
        if sweep.plots:  # matplotlib loads there while the jobs run; it draws at the end
            sweep.drawer = later.start()
        marker = sweep_dir / PARENT_FILE
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"run_id": parent, "experiment_id": exp_id, "done": done,
                                      "sweep_dir": str(sweep_dir)}))
        total = count_jobs(config)
        sweep.progress = Progress(str(sweep_dir), total)
        try:  # a description is a courtesy: a store that refuses it does not stop the sweep
            params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
            grid = swept(OmegaConf.to_container(params) if params else {}, list(config.hydra.overrides.task))
            tracking.describe_experiment(uri, exp_id, experiment_note(
                experiment, [tracking.scrub(g) for g in grid], total, tracking.runs_url(uri, exp_id)))
        except Exception as err:  # noqa: BLE001
            if tracking.unreachable(err):
                raise
            log.warning("could not set the experiment's description: %s", err)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        finish_open_sweeps()


def finish_open_sweeps(error: Optional[BaseException] = None) -> list[SweepResult]:
    """Close every parent run this process opened and print each sweep's summary.

    A sweep stopped by Ctrl-C or SIGTERM is KILLED (and a stop while closing it still closes
    it KILLED); one whose jobs failed, or that failed before any job ran, is FAILED (and removed
    when it has no child run at all, so nothing half-written stays).
    """
    results = []
    while _OPEN:
        sweep = _OPEN[0]  # taken off the list once closed: a stop before that still closes it
        try:
            result = _finish(sweep, error)
        except BaseException as err:
            if stopping.is_stop(err) and error is None:
                with stopping.deferred():
                    _close_killed(sweep)
            raise
        finally:
            _OPEN.remove(sweep)
            if sweep.drawer is not None:  # no plots were handed over: let the helper go
                sweep.drawer.close()
                sweep.drawer = None
        if result is not None:
            results.append(result)
    return results


def _close_killed(sweep: OpenSweep) -> None:
    """End a sweep cut off while it was being closed: its RUNNING children and itself KILLED."""
    for r in tracking.children(sweep.uri, sweep.experiment_id, sweep.parent_id):
        if r.status == "RUNNING":
            tracking.set_status(sweep.uri, r.run_id, "KILLED")
    tracking.set_status(sweep.uri, sweep.parent_id, "KILLED")


def _finish(sweep: OpenSweep, error: Optional[BaseException]) -> Optional[SweepResult]:
    if sweep.progress is not None:
        sweep.progress.stop()
    if error is not None and tracking.unreachable(error):
        return None  # left RUNNING: the next launch's repair_stale marks it KILLED
    rows = tracking.children(sweep.uri, sweep.experiment_id, sweep.parent_id)
    interrupted = error is not None and stopping.is_stop(error)
    if interrupted:  # jobs cut off in other processes may not have closed their runs
        for r in rows:
            if r.status == "RUNNING":
                tracking.set_status(sweep.uri, r.run_id, "KILLED")
        rows = tracking.children(sweep.uri, sweep.experiment_id, sweep.parent_id)
    result = result_of(rows, read_marks(sweep.sweep_dir)["SKIPPED"])
    if interrupted:
        status = "KILLED"
    elif error is not None and not rows:
        tracking.end_parent(sweep.uri, sweep.parent_id, "FAILED")
        tracking.delete_run(sweep.uri, sweep.parent_id)
        return None
    else:
        status = "FINISHED" if result.ok and error is None else "FAILED"
    draw = sweep.plots and rows and not interrupted
    elapsed = time.perf_counter() - sweep.started
    text = summary_text(sweep, result, elapsed)
    if interrupted:
        text += ("\n  interrupted: run the same command again to resume; "
                 "finished runs are skipped, killed and failed ones run again")
    note = (text, result.by_symptom, result.examples, result.best, result.errors)
    metrics = parent_metrics(result.by_symptom, result.failed, result.best_val_loss)
    _log_results(sweep, metrics)
    tracking.end_parent(
        sweep.uri, sweep.parent_id, status,
        tags={"sweeps.runs": result.total, "sweeps.failed": result.failed,
              **{f"sweeps.symptom.{k}": v for k, v in result.by_symptom.items()},
              tracking.TAG_NOTE: parent_note(*note, [])},
        texts={"summary.txt": text},
    )
    if draw:  # the plots name themselves in the parent's description once they are logged
        drawer, sweep.drawer = sweep.drawer, None
        where = later.finish(drawer, later.Job(sweep.uri, sweep.experiment, sweep.output_dir,
                                               sweep.parent_id, note), sweep.wait_for_plots)
        text = summary_text(sweep, result, elapsed, where)
    print(text, flush=True)
    return result


def _log_results(sweep: OpenSweep, metrics: dict) -> None:
    """The parent run's metrics, for the chart view; a problem is only reported."""
    try:
        tracking.log_results(sweep.uri, sweep.parent_id, metrics)
    except Exception as err:  # noqa: BLE001
        log.warning("could not log the sweep's metrics on its parent run: %s", err)
