"""What the vectorised launcher does, as plain functions: compose every job's config (once per
set of config-group choices), train the jobs in batched programs, then record each job through
Hydra's ``run_job``, exactly as the basic launcher runs the sweeps task."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Optional, Sequence

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)

# The task functions whose per-job work is sweeps.app.run_job (compared by name: the launcher
# must not import the CLI module). A task may also declare it with `sweeps_batchable = True`.
SWEEPS_TASKS = {("sweeps.cli", "_task"), ("sweeps.app", "run_job")}


def is_sweeps_task(task_function: Any) -> bool:
    """True when ``task_function`` runs ``sweeps.app.run_job`` per job and nothing else."""
    if getattr(task_function, "sweeps_batchable", False):
        return True
    return (getattr(task_function, "__module__", None),
            getattr(task_function, "__qualname__", None)) in SWEEPS_TASKS


# --- composing ------------------------------------------------------------------------------------


class SweepComposer:
    """``config_loader.load_sweep_config`` for many jobs, composing once per distinct set of
    config-group overrides and applying value overrides (``optimizer.lr=0.1``) to a copy the
    way Hydra applies them after composition. Jobs with anything else (hydra.* overrides,
    ``+``/``~``/``@``, dict values) are composed in full."""

    def __init__(self, hydra_context: HydraContext, master: DictConfig) -> None:
        self.loader = hydra_context.config_loader
        self.master = master
        self.repo = getattr(self.loader, "repository", None)
        self.choices = set(OmegaConf.select(master, "hydra.runtime.choices", default={}) or {})
        self.parser = OverridesParser.create()
        self.bases: dict[tuple[str, ...], DictConfig] = {}
        self.full = 0  # compositions made (for the log line)

    def compose(self, overrides: Sequence[str], job_num: int) -> DictConfig:
        parsed = self.parser.parse_overrides(list(overrides))
        split = self._split(parsed)
        if split is None:
            cfg = self._load(list(overrides))
        else:
            groups, values = split
            if groups not in self.bases:
                self.bases[groups] = self._load(list(groups))
            cfg = self._apply(self.bases[groups], parsed, values)
        with open_dict(cfg):
            cfg.hydra.job.id = job_num
            cfg.hydra.job.num = job_num
        return cfg

    def _load(self, overrides: list[str]) -> DictConfig:
        self.full += 1
        return self.loader.load_sweep_config(self.master, overrides)

    def _is_group(self, o: Override) -> bool:
        key = o.key_or_group
        return key in self.choices or bool(self.repo is not None and self.repo.group_exists(key))

    def _split(self, parsed: list[Override]) -> Optional[tuple[tuple[str, ...], list[Override]]]:
        """(group overrides, value overrides) or None when the job must be composed in full."""
        if self.repo is None:
            return None
        groups, values = [], []
        for o in parsed:
            if o.type != OverrideType.CHANGE or o.package is not None or o.is_hydra_override() \
                    or o.is_sweep_override():
                return None
            value = o.value()
            if self._is_group(o) and not isinstance(value, dict):
                groups.append(o.input_line)
            elif isinstance(value, (dict, list)) or self._is_group(o):
                return None
            else:
                values.append(o)
        return tuple(groups), values

    def _apply(self, base: DictConfig, parsed: list[Override], values: list[Override]
               ) -> DictConfig:
        cfg = copy.deepcopy(base)
        OmegaConf.copy_cache(from_config=self.master, to_config=cfg)
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)  # what Hydra itself calls
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in parsed]
            sep = cfg.hydra.job.config.override_dirname
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=parsed, kv_sep=sep.kv_sep, item_sep=sep.item_sep,
                exclude_keys=sep.exclude_keys,
            )
        return cfg


# --- launching ------------------------------------------------------------------------------------


@dataclass
class Job:
    num: int
    overrides: list[str]
    config: DictConfig
    mode: str = "batch"  # batch | alone | resume
    why: str = ""  # why it runs alone
    parent: Optional[dict] = None  # the sweep's parent run (sweeps.app.find_parent)
    history: Any = None  # what the engine trained


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

    composer = SweepComposer(ctx, config)
    started = time.perf_counter()
    jobs = [Job(initial_job_idx + i, list(ov), composer.compose(ov, initial_job_idx + i))
            for i, ov in enumerate(job_overrides)]
    log.info("composed %d job configs from %d compositions in %.2f s", len(jobs), composer.full,
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
        for j in jobs:
            # as sweeps.app.run_job: a job belongs to the parent run only in a multirun
            multirun = str(OmegaConf.select(j.config, "hydra.mode")) == "RunMode.MULTIRUN"
            j.parent = parent if multirun else None
        plan(jobs)
        train(jobs)

    returns = []
    for j in jobs:
        returns.append(_run(ctx, j, task if j.mode != "batch" else _recorder(j)))
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return returns


def plan(jobs: list[Job]) -> None:
    """Decide per job: resumed (finished before; the task skips it), alone (the engine cannot
    train it, logged with why) or batched."""
    from sweeps.config import config_hash
    from sweeps.engine import unsupported

    for j in jobs:
        try:
            done = (j.parent or {}).get("done", {})
            if j.config.sweep.resume and config_hash(j.config) in done:
                j.mode = "resume"  # sweeps.app.run_job skips it (marks it SKIPPED) without training
                continue
            why = unsupported(j.config)
        except Exception as err:  # noqa: BLE001 - the job itself will report it, in its own run
            why = f"{type(err).__name__}: {err}"
        if why is not None:
            j.mode, j.why = "alone", why
            log.info("#%d runs on its own (sequential loop): %s", j.num, why)


def train(jobs: list[Job]) -> None:
    """Train the batched jobs, one program per engine group; a group whose program fails
    falls back to running its jobs one by one."""
    from sweeps.engine import group_key, train_batch

    groups: dict[Hashable, list[Job]] = {}
    for j in jobs:
        if j.mode == "batch":
            groups.setdefault(group_key(j.config), []).append(j)
    started = time.perf_counter()
    for key, members in groups.items():
        try:
            histories = train_batch([j.config for j in members])
        except Exception as err:  # noqa: BLE001 - the jobs still run, the sequential way
            log.warning("batched program %s failed (%s: %s): running its %d jobs one by one",
                        key, type(err).__name__, err, len(members))
            for j in members:
                j.mode, j.why = "alone", f"batched program failed: {err}"
            continue
        for j, h in zip(members, histories):
            j.history = h
    counts = {m: sum(j.mode == m for j in jobs) for m in ("batch", "alone", "resume")}
    log.info("trained %d jobs in %d batched programs in %.2f s; %d run one by one, "
             "%d finished before (resumed)", counts["batch"], len(groups),
             time.perf_counter() - started, counts["alone"], counts["resume"])


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
    return run_job(hydra_context=ctx, task_function=task, config=job.config,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
