"""Hydra sweeper ``hydra/sweeper=grid``: Hydra's basic grid sweeper, validating a batch of
jobs by composing once per set of config-group choices instead of once per job."""

__version__ = "0.1.0"
