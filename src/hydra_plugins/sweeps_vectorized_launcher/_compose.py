"""Composing a sweep's job configs as Hydra would, once per set of config-group choices: each
job's config is its base composition with the job's scalar values patched in."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.types import HydraContext
from omegaconf import Container, DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)



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
