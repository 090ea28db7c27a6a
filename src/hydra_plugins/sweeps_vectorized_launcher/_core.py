"""What the vectorised launcher does, as plain functions: prepare every job's config (composed
once per set of config-group choices, the scalar overrides patched in), train the jobs in
batched programs, then record them in bulk, or each through Hydra's ``run_job`` where the bulk
path does not apply."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from ._bulk import bulk_applies, record
from ._compose import Job, composer_for
from ._jobdir import job_return

log = logging.getLogger(__name__)

# The task functions whose per-job work is sweeps.app.run_job, compared by name: Hydra hands the
# launcher the undecorated function, and the launcher must not import the CLI module.
SWEEPS_TASKS = {("sweeps.cli", "_task"), ("sweeps.app", "run_job")}



def is_sweeps_task(task_function: Any) -> bool:
    """True when ``task_function`` runs ``sweeps.app.run_job`` per job and nothing else."""
    return (getattr(task_function, "__module__", None),
            getattr(task_function, "__qualname__", None)) in SWEEPS_TASKS


# --- launching ------------------------------------------------------------------------------------


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
           ) -> list[JobReturn]:
    """Run a batch of jobs; one JobReturn per job, in order (the objective: final val loss)."""
    setup_globals()
    assert launcher.config is not None and launcher.hydra_context is not None
    config, ctx, task = launcher.config, launcher.hydra_context, launcher.task_function
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    log.info("Vectorized launcher: %d jobs, sweep output dir: %s", len(job_overrides), sweep_dir)
    for i, ov in enumerate(job_overrides):
        log.info("\t#%d : %s", initial_job_idx + i, " ".join(filter_overrides(ov)))

    composer = composer_for(ctx, config)
    started = time.perf_counter()
    batching = is_sweeps_task(task) and launcher.batch
    if batching:
        jobs = [composer.prepare(ov, initial_job_idx + i) for i, ov in enumerate(job_overrides)]
    else:
        jobs = [Job(initial_job_idx + i, list(ov), {}, config=composer.compose(ov, initial_job_idx + i))
                for i, ov in enumerate(job_overrides)]
    log.info("prepared %d job configs from %d compositions in %.2f s", len(jobs), composer.full,
             time.perf_counter() - started)

    if not is_sweeps_task(task):
        name = f"{getattr(task, '__module__', '?')}.{getattr(task, '__qualname__', task)}"
        log.info("task %s is not the sweeps task: running %d jobs one by one", name, len(jobs))
        for j in jobs:
            j.mode, j.why = "alone", "not the sweeps task"
    elif not launcher.batch:
        log.info("hydra.launcher.batch=false: running %d jobs one by one", len(jobs))
        for j in jobs:
            j.mode, j.why = "alone", "hydra.launcher.batch=false"
    else:
        from sweeps.app import find_parent

        parent = find_parent(str(sweep_dir))  # what the sweep's start callback left for its jobs
        multirun = str(OmegaConf.select(config, "hydra.mode")) == "RunMode.MULTIRUN"
        for j in jobs:
            j.parent = parent if multirun else None  # as sweeps.app.run_job
        plan(jobs)

    bulk = batching and bulk_applies(ctx, config)
    returns: dict[int, JobReturn] = {}
    if batching:
        for members in train(jobs):
            if bulk:
                returns.update(record(composer, config, members, sweep_dir))
    for j in jobs:
        if j.num in returns:
            continue
        if bulk and j.mode == "resume":
            returns[j.num] = _skip(j, sweep_dir)
            continue
        if j.config is None:
            j.config = composer.compose(j.overrides, j.num)
        returns[j.num] = _run(ctx, j, task if j.mode != "batch" else _recorder(j))
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [returns[j.num] for j in jobs]


def plan(jobs: list[Job]) -> None:
    """Decide per job: resumed (finished before; not trained again), alone (the engine cannot
    train it, logged with why) or batched."""
    from sweeps.config import config_hash
    from sweeps.engine import unsupported

    for j in jobs:
        try:
            done = (j.parent or {}).get("done", {})
            if j.container["sweep"]["resume"] and config_hash(j.container) in done:
                j.mode, j.done = "resume", done[config_hash(j.container)]
                continue
            why = unsupported(j.container)
        except Exception as err:  # noqa: BLE001 - the job itself will report it, in its own run
            why = f"{type(err).__name__}: {err}"
        if why is not None:
            j.mode, j.why = "alone", why
            log.info("#%d runs on its own (sequential loop): %s", j.num, why)


def train(jobs: list[Job]) -> Iterator[list[Job]]:
    """Train the batched jobs, one program per engine group, yielding each group's jobs with
    their histories (so they are recorded, and their histories freed, before the next group
    trains). A group whose program fails falls back to running its jobs one by one."""
    from sweeps.engine import group_key, train_batch

    groups: dict[Hashable, list[Job]] = {}
    for j in jobs:
        if j.mode == "batch":
            groups.setdefault(group_key(j.container), []).append(j)
    started, seconds = time.perf_counter(), 0.0
    for key, members in groups.items():
        t = time.perf_counter()
        try:
            histories = train_batch([j.container for j in members])
        except Exception as err:  # noqa: BLE001 - the jobs still run, the sequential way
            log.warning("batched program %s failed (%s: %s): running its %d jobs one by one",
                        key, type(err).__name__, err, len(members))
            for j in members:
                j.mode, j.why = "alone", f"batched program failed: {err}"
            continue
        seconds += time.perf_counter() - t
        for j, h in zip(members, histories):
            j.history = h
        yield members
    counts = {m: sum(j.mode == m for j in jobs) for m in ("batch", "alone", "resume")}
    log.info("trained %d jobs in %d batched programs in %.2f s (%.2f s with recording); %d run "
             "one by one, %d finished before (resumed)", counts["batch"], len(groups), seconds,
             time.perf_counter() - started, counts["alone"], counts["resume"])


def _skip(j: Job, sweep_dir: Path) -> JobReturn:
    """A job that finished in an earlier launch, as sweeps.app.run_job skips it."""
    from sweeps.progress import mark_job

    mark_job(str(sweep_dir), j.num, "SKIPPED")
    log.info("#%d skipped: finished earlier as run %s", j.num, (j.done or {}).get("run_id"))
    return job_return(j, (j.done or {}).get("val_loss"))


# --- one job at a time ----------------------------------------------------------------------------


def _recorder(job: Job) -> Callable[[DictConfig], float]:
    """A task function that records ``job``'s batched History as sweeps.app.run_job records a
    run it trained itself: same parent, tags, params, metrics and artifacts."""

    def record(cfg: DictConfig) -> float:
        from sweeps import app

        hc = HydraConfig.get()
        outcome = app.execute(
            cfg, list(hc.overrides.task), parent=job.parent, job_dir=Path(hc.runtime.output_dir),
            extra_tags={"sweeps.job_num": hc.job.num} if job.parent else None,
            trained=job.history,
        )
        return outcome.objective

    return record


def _run(ctx: HydraContext, job: Job, task: TaskFunction) -> JobReturn:
    """Hydra's run_job (job dir, .hydra/ files, job logging, callbacks); an exception in the
    task becomes a FAILED JobReturn holding it, and the other jobs go on."""
    assert job.config is not None
    return run_job(hydra_context=ctx, task_function=task, config=job.config,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")

