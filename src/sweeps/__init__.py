"""sweeps: Hydra grids over the canonical PyTorch training loop, tracked in MLflow and diagnosed."""

__version__ = "0.1.0"
