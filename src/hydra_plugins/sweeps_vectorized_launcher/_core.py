"""What the vectorised launcher does, as plain functions: prepare every job's config (composed
once per set of config-group choices, the scalar overrides patched in), train the jobs in
batched programs, then record them in bulk, or each through Hydra's ``run_job`` where the bulk
path does not apply."""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Optional, Sequence

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.core.utils import JobReturn, JobRuntime, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.experimental.callback import Callback
from hydra.types import HydraContext, TaskFunction
from omegaconf import Container, DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)

# The task functions whose per-job work is sweeps.app.run_job, compared by name: Hydra hands the
# launcher the undecorated function, and the launcher must not import the CLI module.
SWEEPS_TASKS = {("sweeps.cli", "_task"), ("sweeps.app", "run_job")}

CHUNK = 250  # runs written per store transaction (bounds memory; progress advances per chunk)


def is_sweeps_task(task_function: Any) -> bool:
    """True when ``task_function`` runs ``sweeps.app.run_job`` per job and nothing else."""
    return (getattr(task_function, "__module__", None),
            getattr(task_function, "__qualname__", None)) in SWEEPS_TASKS


# --- composing ------------------------------------------------------------------------------------


@dataclass
class Base:
    """One composition (a set of config-group overrides) and what the jobs on it share."""

    cfg: DictConfig
    task: DictConfig  # cfg without its hydra node: value overrides are converted on it
    resolved: dict[str, Any]  # the task part, resolved
    hydra: dict[str, Any]  # {"hydra": ...} unresolved, as run_job saves .hydra/hydra.yaml
    patchable: bool  # no interpolation in the task part: a job's config = base + its values
    values: dict[str, Any] = field(default_factory=dict)  # override line -> converted value
    _hydra_yaml: str = ""

    def hydra_yaml(self, num: int, overrides: list[str], override_dirname: str, output_dir: str) -> str:
        """.hydra/hydra.yaml of one job: the base's hydra node, dumped once with placeholders
        where jobs differ (job num, id (a string in Hydra's schema), override_dirname,
        overrides.task, runtime.output_dir),
        which are then filled in (JSON scalars and lists are YAML)."""
        if not self._hydra_yaml:
            from sweeps.config import dump_yaml

            template = copy.deepcopy(self.hydra)
            h = template["hydra"]
            h["job"]["num"], h["job"]["id"] = "__SWEEPS_JOB_NUM__", "__SWEEPS_JOB_ID__"
            h["job"]["override_dirname"] = "__SWEEPS_OVERRIDE_DIRNAME__"
            h["overrides"]["task"] = "__SWEEPS_TASK__"
            h["runtime"]["output_dir"] = "__SWEEPS_OUTPUT_DIR__"
            self._hydra_yaml = dump_yaml(template)
        return self._hydra_yaml.replace("__SWEEPS_JOB_NUM__", str(num)) \
            .replace("__SWEEPS_JOB_ID__", json.dumps(str(num))) \
            .replace("__SWEEPS_OVERRIDE_DIRNAME__", json.dumps(override_dirname)) \
            .replace("__SWEEPS_TASK__", json.dumps(list(overrides))) \
            .replace("__SWEEPS_OUTPUT_DIR__", json.dumps(output_dir))

    def value(self, o: Override) -> Any:
        """The value ``o`` gives its key, converted as Hydra converts it (``optimizer.lr=1``
        -> 1.0); an override Hydra rejects raises Hydra's error."""
        if o.input_line not in self.values:
            ConfigLoaderImpl._apply_overrides_to_config([o], self.task)  # what Hydra itself calls
            v = OmegaConf.select(self.task, o.key_or_group)
            self.values[o.input_line] = OmegaConf.to_container(v, resolve=True) \
                if isinstance(v, Container) else v
        return self.values[o.input_line]


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
        self.prepared: dict[tuple[str, ...], Base] = {}
        self.groups: dict[str, bool] = {}  # key -> is a config group
        self.parsed: dict[str, Override] = {}  # override line -> parsed (jobs share lines)
        self.full = 0  # compositions made (for the log line)

    def parse(self, overrides: Sequence[str]) -> list[Override]:
        """Hydra's parse of each override line, once per distinct line."""
        missing = [o for o in overrides if o not in self.parsed]
        if missing:
            self.parsed.update(zip(missing, self.parser.parse_overrides(missing)))
        return [self.parsed[o] for o in overrides]

    def compose(self, overrides: Sequence[str], job_num: int) -> DictConfig:
        """The job's full config, equal to what Hydra's ``load_sweep_config`` returns."""
        parsed = self.parse(overrides)
        split = self._split(parsed)
        if split is None:
            cfg = self._load(list(overrides))
        else:
            groups, values = split
            cfg = self._apply(self._composed(groups), parsed, values)
        with open_dict(cfg):
            cfg.hydra.job.id = job_num
            cfg.hydra.job.num = job_num
        return cfg

    def check(self, overrides: Sequence[str]) -> None:
        """Raise what Hydra's ``load_sweep_config`` would raise for this job, cheaply: the
        group choices are composed once, each distinct value override converted once."""
        parsed = self.parse(overrides)
        split = self._split(parsed)
        if split is None:
            self._load(list(overrides))
            return
        groups, values = split
        base = self.base(groups)
        for o in values:
            base.value(o)

    def prepare(self, overrides: Sequence[str], job_num: int) -> Job:
        """A Job: the resolved task config as plain data, without a DictConfig per job where
        its overrides are group choices plus scalar values."""
        parsed = self.parse(overrides)
        split = self._split(parsed)
        if split is not None:
            groups, values = split
            base = self.base(groups)
            if base.patchable:
                container = copy.deepcopy(base.resolved)
                for o in values:
                    _set(container, o.key_or_group, base.value(o))
                return Job(job_num, list(overrides), container, base=base, parsed=parsed)
        cfg = self.compose(overrides, job_num)
        return Job(job_num, list(overrides), _task_container(cfg), config=cfg, parsed=parsed)

    def base(self, groups: tuple[str, ...]) -> Base:
        if groups not in self.prepared:
            cfg = self._composed(groups)
            task = copy.deepcopy(cfg)
            with read_write(task), open_dict(task):
                del task["hydra"]
            unresolved = OmegaConf.to_container(task, resolve=False)
            self.prepared[groups] = Base(
                cfg, task, OmegaConf.to_container(task, resolve=True),
                {"hydra": OmegaConf.to_container(cfg.hydra, resolve=False, enum_to_str=True)},
                patchable=not _has_interpolation(unresolved),
            )
        return self.prepared[groups]

    def _composed(self, groups: tuple[str, ...]) -> DictConfig:
        if groups not in self.bases:
            self.bases[groups] = self._load(list(groups))
        return self.bases[groups]

    def _load(self, overrides: list[str]) -> DictConfig:
        self.full += 1
        return self.loader.load_sweep_config(self.master, overrides)

    def _is_group(self, o: Override) -> bool:
        key = o.key_or_group
        if key not in self.groups:
            self.groups[key] = key in self.choices or bool(self.repo is not None and self.repo.group_exists(key))
        return self.groups[key]

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
            cfg.hydra.job.override_dirname = self.override_dirname(parsed)
        return cfg

    def override_dirname(self, parsed: list[Override]) -> str:
        sep = self.master.hydra.job.config.override_dirname
        return get_overrides_dirname(overrides=parsed, kv_sep=sep.kv_sep, item_sep=sep.item_sep,
                                     exclude_keys=sep.exclude_keys)


_SHARED: list[tuple[Any, Any, SweepComposer]] = []


def composer_for(ctx: HydraContext, config: DictConfig) -> SweepComposer:
    """One SweepComposer per multirun (its config loader and master config): the grid
    sweeper's check and the launcher then compose each set of group choices once in all."""
    for loader, master, composer in _SHARED:
        if loader is ctx.config_loader and master is config:
            return composer
    composer = SweepComposer(ctx, config)
    _SHARED[:] = [(ctx.config_loader, config, composer)]
    return composer


def _task_container(cfg: DictConfig) -> dict[str, Any]:
    return {k: OmegaConf.to_container(cfg[k], resolve=True) if isinstance(cfg[k], Container) else cfg[k]
            for k in cfg if k != "hydra"}


def _has_interpolation(node: Any) -> bool:
    if isinstance(node, dict):
        return any(_has_interpolation(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_interpolation(v) for v in node)
    return isinstance(node, str) and "${" in node


def _set(container: dict[str, Any], dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    node = container
    for part in path:
        node = node[part]
    node[last] = copy.deepcopy(value)


# --- launching ------------------------------------------------------------------------------------


@dataclass
class Job:
    num: int
    overrides: list[str]
    container: dict[str, Any]  # the resolved task config (what the engine and records read)
    base: Optional[Base] = None  # set when the config is base + scalar values
    config: Optional[DictConfig] = None  # the full config, composed when a path needs it
    parsed: list[Override] = field(default_factory=list)
    mode: str = "batch"  # batch | alone | resume
    why: str = ""  # why it runs alone
    parent: Optional[dict] = None  # the sweep's parent run (sweeps.app.find_parent)
    history: Any = None  # what the engine trained
    done: Optional[dict] = None  # the earlier run of a resumed job


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

    bulk = batching and _bulk_applies(ctx, config)
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


# --- recording in bulk ----------------------------------------------------------------------------


def _bulk_applies(ctx: HydraContext, config: DictConfig) -> bool:
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


def record(composer: SweepComposer, config: DictConfig, jobs: list[Job], sweep_dir: Path
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
        written: list[tuple[Job, Any, Optional[tracking.RunLog], Path]] = []
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
            line = app.verdict_line(outcome)
            _job_log(config, job_dir, line)
            if j.parent:
                mark_job(j.parent["sweep_dir"], j.num, "FINISHED", outcome.diagnosis.symptom)
            out[j.num] = _job_return(j, outcome.objective)
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


def _prepare_record(composer: SweepComposer, config: DictConfig, j: Job, sweep_dir: Path
                    ) -> tuple[Job, Any, Any, Path]:
    """Job dir and .hydra/ files as run_job writes them, the run's contents queued."""
    from sweeps import app, tracking
    from sweeps.config import dump_yaml

    assert j.base is not None
    override_dirname = composer.override_dirname(j.parsed)
    subdir = str(j.base.hydra["hydra"]["sweep"]["subdir"])
    job_dir = sweep_dir / _subdir(subdir, j, override_dirname, composer)
    config_yaml = dump_yaml(j.container)  # no interpolations (a patchable base): also resolved
    files = {"config.yaml": config_yaml,
             "hydra.yaml": j.base.hydra_yaml(j.num, j.overrides, override_dirname, os.path.abspath(job_dir)),
             "overrides.yaml": dump_yaml(list(j.overrides))}
    output_subdir = config.hydra.output_subdir
    if output_subdir is not None:
        folder = job_dir / str(output_subdir)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text)
    else:
        job_dir.mkdir(parents=True, exist_ok=True)
        files = {}

    c = j.container
    name = app.run_name(c, j.overrides)
    diagnosis = app.label(c, j.history)
    outcome = app.Outcome(name, j.history, diagnosis)
    if not c["tracking"]["enabled"]:
        return j, outcome, None, job_dir
    uri, experiment, artifacts = app.store_location(c)
    exp_id = j.parent["experiment_id"] if j.parent else _experiment(uri, experiment, str(artifacts))
    extra = {"sweeps.job_num": j.num} if j.parent else None
    tags, params = app.describe(c, j.overrides, j.base.hydra["hydra"]["runtime"]["choices"], j.parent, extra)
    rl = tracking.RunLog.open(uri, exp_id, name, tags)
    rl.add(params=params, tags=app.outcome_tags(diagnosis, j.history),
           texts=app.config_texts(c, files, resolved_yaml=config_yaml))
    rl.queue_epochs(0, j.history.metrics)
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


def _subdir(template: str, j: Job, override_dirname: str, composer: SweepComposer) -> str:
    """hydra.sweep.subdir for this job; the usual templates without composing the job."""
    text = template.replace("${hydra.job.num}", str(j.num)).replace("${hydra.job.id}", str(j.num)) \
        .replace("${hydra.job.override_dirname}", override_dirname)
    if "${" not in text:
        return text
    cfg = composer.compose(j.overrides, j.num)
    return str(OmegaConf.select(cfg, "hydra.sweep.subdir"))


def _job_log(config: DictConfig, job_dir: Path, line: str) -> None:
    """The job's log file, as run_job's job logging writes it: ``<job dir>/<job name>.log``
    with the file handler's format (the default job logging), else nothing."""
    handler = OmegaConf.select(config, "hydra.job_logging.handlers.file", default=None)
    if handler is None or "${hydra.runtime.output_dir}" not in str(
            OmegaConf.to_container(handler).get("filename", "")):
        return
    spec = OmegaConf.to_container(handler)
    fmt = OmegaConf.select(config, f"hydra.job_logging.formatters.{spec.get('formatter')}.format",
                           default=None)
    filename = str(spec["filename"]).replace("${hydra.runtime.output_dir}", str(job_dir)) \
        .replace("${hydra.job.name}", str(config.hydra.job.name))
    if "${" in filename:
        return
    record = logging.LogRecord("sweeps.app", logging.INFO, __file__, 0, line, None, None)
    with open(filename, "a") as f:
        f.write(logging.Formatter(fmt).format(record) + "\n")


class _BulkReturn(JobReturn):
    """A JobReturn whose ``cfg`` (a DictConfig of the job's task config) is built when first
    read: creating 7,200 of them nobody reads would cost seconds."""

    _container: Optional[dict[str, Any]] = None
    _cfg: Any = None

    @property  # type: ignore[override]
    def cfg(self) -> Any:
        if self._cfg is None and self._container is not None:
            self._cfg = OmegaConf.create(self._container)
        return self._cfg

    @cfg.setter
    def cfg(self, value: Any) -> None:
        self._cfg = value


def _job_return(j: Job, value: Any) -> JobReturn:
    ret = _BulkReturn(overrides=list(j.overrides), hydra_cfg=None, working_dir=os.getcwd(),
                      task_name=JobRuntime.instance().get("name"), status=JobStatus.COMPLETED)
    ret._container = j.container
    ret.return_value = value
    return ret


def _skip(j: Job, sweep_dir: Path) -> JobReturn:
    """A job that finished in an earlier launch, as sweeps.app.run_job skips it."""
    from sweeps.progress import mark_job

    mark_job(str(sweep_dir), j.num, "SKIPPED")
    log.info("#%d skipped: finished earlier as run %s", j.num, (j.done or {}).get("run_id"))
    return _job_return(j, (j.done or {}).get("val_loss"))


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

