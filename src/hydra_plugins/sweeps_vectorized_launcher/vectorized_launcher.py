"""The launcher class Hydra instantiates; the work is in ``_core`` (imported on first launch,
so Hydra's plugin scan at every start-up stays cheap)."""

from __future__ import annotations

from typing import Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class VectorizedLauncher(Launcher):
    """Trains the jobs of a sweeps multirun together (see the package docstring); any other
    task, and any job the engine cannot train, runs one by one as with the basic launcher."""

    def __init__(self, batch: bool = True) -> None:
        self.batch = batch
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
               ) -> Sequence[JobReturn]:
        from . import _core

        return _core.launch(self, job_overrides, initial_job_idx)
