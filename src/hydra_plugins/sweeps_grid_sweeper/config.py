"""The sweeper's config node, registered as ``hydra/sweeper=grid``."""

from dataclasses import dataclass
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.sweeps_grid_sweeper.grid_sweeper.GridSweeper"
    max_batch_size: Optional[int] = None  # as hydra/sweeper=basic
    params: Optional[Dict[str, str]] = None  # as hydra/sweeper=basic: key -> comma-separated values


ConfigStore.instance().store(group="hydra/sweeper", name="grid", node=GridSweeperConf,
                             provider="sweeps_grid_sweeper")
