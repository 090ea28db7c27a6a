"""Recording trained jobs in bulk: the runs of a chunk in one store transaction, and the job
dirs, .hydra/ files and job logs that Hydra's run_job would have left."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any, Optional

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf

from ._compose import SweepComposer
from ._jobdir import job_log, job_return, write_job_dir

log = logging.getLogger(__name__)

_HOST = socket.gethostname()
CHUNK = 250  # runs written per store transaction (bounds memory; progress advances per chunk)



def bulk_applies(ctx: HydraContext, config: DictConfig) -> bool:
    """The bulk path leaves what run_job would, as long as nothing observes single jobs: no
    callback with on_job_start/on_job_end, no hydra.job.env_set, no chdir into job dirs."""
    callbacks = getattr(ctx.callbacks, "callbacks", []) if ctx.callbacks is not None else []
    per_job = [type(cb).__name__ for cb in callbacks
               if type(cb).on_job_start is not Callback.on_job_start
               or type(cb).on_job_end is not Callback.on_job_end]
    why = ""
    if per_job:
        why = f"callbacks with per-job hooks ({', '.join(per_job)})"
    elif OmegaConf.select(config, "hydra.job.env_set"):
        why = "hydra.job.env_set is set"
    elif OmegaConf.select(config, "hydra.job.chdir"):
        why = "hydra.job.chdir=true"
    if why:
        log.info("recording each job through Hydra's run_job: %s", why)
    return not why


def record(composer: SweepComposer, config: DictConfig, jobs: list[Any], sweep_dir: Path
           ) -> dict[int, JobReturn]:
    """Record trained jobs as sweeps.app.execute records them (same run, params, metrics,
    tags, artifacts) and leave what Hydra's run_job leaves (job dir, .hydra/ files, job log),
    writing runs in one store transaction per CHUNK. A job whose preparation fails, or whose
    chunk cannot be written, is left out of the result and goes through run_job."""
    from sweeps import app, stopping, tracking
    from sweeps.progress import mark_job

    out: dict[int, JobReturn] = {}
    ready = [j for j in jobs if j.history is not None and j.base is not None]
    for start in range(0, len(ready), CHUNK):
        stopping.check()  # between chunks: a stop whose interrupt was lost ends the sweep here
        chunk = ready[start:start + CHUNK]
        written: list[tuple[Any, Any, Optional[tracking.RunLog], Path]] = []
        for j in chunk:
            try:
                written.append(_prepare_record(composer, config, j, sweep_dir))
            except Exception as err:  # noqa: BLE001 - run_job records it, as a failed run if need be
                log.warning("#%d: %s: %s; recording it through run_job", j.num, type(err).__name__, err)
        by_store: dict[str, list[tracking.RunLog]] = {}
        for _, _, rl, _ in written:
            if rl is not None:
                by_store.setdefault(rl.uri, []).append(rl)
        failed: set[str] = set()  # stores whose write failed: their jobs go through run_job
        for uri, logs in by_store.items():
            try:
                with stopping.deferred():  # a chunk is written whole or not at all
                    tracking.finish_many(uri, logs, "FINISHED")
            except (KeyboardInterrupt, tracking.StoreUnreachable):
                raise
            except Exception as err:  # noqa: BLE001
                if stopping.is_stop(err):
                    raise stopping.as_stopped(err) from err  # a wait the signal cut short
                if tracking.unreachable(err):
                    raise tracking.store_unreachable(uri, err) from err
                log.warning("writing %d runs at once failed (%s: %s): recording them one by one",
                            len(logs), type(err).__name__, err)
                _abandon(logs)
                failed.add(uri)
        for j, outcome, rl, job_dir in written:
            if rl is not None and rl.uri in failed:
                continue
            outcome.run_id = rl.run_id if rl is not None else None  # a server's run: known now
            line = app.verdict_line(outcome)
            job_log(config, job_dir, line)
            if j.parent:
                mark_job(j.parent["sweep_dir"], j.num, "FINISHED", outcome.diagnosis.symptom)
            out[j.num] = job_return(j, outcome.objective)
            j.history = None  # free it
    return out


def _abandon(logs: list[Any]) -> None:
    """Runs a failed bulk write had already created (a tracking server creates runs one by
    one) are marked FAILED: their jobs are recorded again, one by one."""
    from sweeps import tracking

    for rl in logs:
        if rl.created:
            try:
                tracking.set_status(rl.uri, rl.run_id, "FAILED")
            except Exception:  # noqa: BLE001 - the store is what failed; nothing more to do
                pass


def _prepare_record(composer: SweepComposer, config: DictConfig, j: Any, sweep_dir: Path
                    ) -> tuple[Any, Any, Any, Path]:
    """Job dir and .hydra/ files as run_job writes them, the run's contents queued."""
    from sweeps import app, record, tracking

    job_dir, files, config_yaml = write_job_dir(composer, config, j, sweep_dir)
    c = j.container
    diagnosis = app.label(c, j.history)
    rec = record.begin(c, j.overrides, j.base.hydra["hydra"]["runtime"]["choices"], host=_HOST,
                       pid=os.getpid(), parent=j.parent,
                       extra_tags={"sweeps.job_num": j.num} if j.parent else None,
                       trained=j.history, baseline=app.baseline(c))
    outcome = app.Outcome(rec.name, j.history, diagnosis)
    if not c["tracking"]["enabled"]:
        return j, outcome, None, job_dir
    uri, experiment, artifacts = app.store_location(c)
    exp_id = j.parent["experiment_id"] if j.parent else _experiment(uri, experiment, str(artifacts))
    rl = tracking.RunLog.open(uri, exp_id, rec.name, rec.tags, start_time=rec.start_ms, lazy=True)
    rl.add(params=rec.params)
    app.write(rl, record.complete(rec, c, j.history, diagnosis, files, resolved_yaml=config_yaml))
    outcome.run_id = rl.run_id
    return j, outcome, rl, job_dir


_EXPERIMENTS: dict[tuple[str, str], str] = {}


def _experiment(uri: str, name: str, artifacts: str) -> str:
    """A multirun without the sweeps callback (no parent run): runs go to the experiment as
    lone runs do; checked and looked up once per store and name."""
    from sweeps import tracking

    if (uri, name) not in _EXPERIMENTS:
        tracking.check_writable(uri)
        _EXPERIMENTS[(uri, name)] = tracking.experiment_id(uri, name, artifacts)
    return _EXPERIMENTS[(uri, name)]
