"""The launcher's config node, registered as ``hydra/launcher=vectorized``."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class VectorizedLauncherConf:
    _target_: str = (
        "hydra_plugins.sweeps_vectorized_launcher.vectorized_launcher.VectorizedLauncher"
    )
    # false: run every job one by one, as hydra/launcher=basic does (to compare or debug)
    batch: bool = True


ConfigStore.instance().store(
    group="hydra/launcher", name="vectorized", node=VectorizedLauncherConf,
    provider="sweeps_vectorized_launcher",
)
