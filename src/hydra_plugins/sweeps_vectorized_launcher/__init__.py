"""Hydra launcher ``hydra/launcher=vectorized``: trains a sweep's jobs as batched tensor
programs (sweeps.engine) and records each as its own run, as the basic launcher would."""

__version__ = "0.1.0"
