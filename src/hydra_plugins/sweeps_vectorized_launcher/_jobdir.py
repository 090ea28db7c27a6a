"""What Hydra's run_job leaves for a job, written without running it: the job dir, its .hydra/
files and log line, and the JobReturn."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional

from hydra.core.utils import JobReturn, JobRuntime, JobStatus
from omegaconf import DictConfig, OmegaConf

from ._compose import SweepComposer

log = logging.getLogger(__name__)


def subdir(template: str, j: Any, override_dirname: str, composer: SweepComposer) -> str:
    """hydra.sweep.subdir for this job; the usual templates without composing the job."""
    text = template.replace("${hydra.job.num}", str(j.num)).replace("${hydra.job.id}", str(j.num)) \
        .replace("${hydra.job.override_dirname}", override_dirname)
    if "${" not in text:
        return text
    cfg = composer.compose(j.overrides, j.num)
    return str(OmegaConf.select(cfg, "hydra.sweep.subdir"))


def job_log(config: DictConfig, job_dir: Path, line: str) -> None:
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


def job_return(j: Any, value: Any) -> JobReturn:
    ret = _BulkReturn(overrides=list(j.overrides), hydra_cfg=None, working_dir=os.getcwd(),
                      task_name=JobRuntime.instance().get("name"), status=JobStatus.COMPLETED)
    ret._container = j.container
    ret.return_value = value
    return ret


def write_job_dir(composer: SweepComposer, config: DictConfig, j: Any, sweep_dir: Path
                  ) -> tuple[Path, dict[str, str], str]:
    """The job dir and its .hydra/ files as run_job writes them. Returns the job dir, the
    .hydra/ files written (none when hydra.output_subdir is null) and the resolved config YAML."""
    from sweeps.config import dump_yaml

    assert j.base is not None
    override_dirname = composer.override_dirname(j.parsed)
    template = str(j.base.hydra["hydra"]["sweep"]["subdir"])
    job_dir = sweep_dir / subdir(template, j, override_dirname, composer)
    config_yaml = dump_yaml(j.container)  # no interpolations (a patchable base): also resolved
    files = {"config.yaml": config_yaml,
             "hydra.yaml": j.base.hydra_yaml(j.num, j.overrides, override_dirname, os.path.abspath(job_dir)),
             "overrides.yaml": dump_yaml(list(j.overrides))}
    output_subdir = config.hydra.output_subdir
    if output_subdir is None:
        job_dir.mkdir(parents=True, exist_ok=True)
        return job_dir, {}, config_yaml
    folder = job_dir / str(output_subdir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return job_dir, files, config_yaml
