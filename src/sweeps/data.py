"""Seeded synthetic regression data: points on y = slope * x + intercept plus Gaussian noise,
split into a training set (one full batch) and a held-out validation set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Dataset:
    x_train: torch.Tensor  # (n_train, 1)
    y_train: torch.Tensor  # (n_train, 1)
    x_val: torch.Tensor  # (n_val, 1)
    y_val: torch.Tensor  # (n_val, 1)

    def to(self, device: torch.device) -> "Dataset":
        return Dataset(*(t.to(device) for t in (self.x_train, self.y_train, self.x_val, self.y_val)))


def make_data(data: Any, seed: int, dtype: torch.dtype = torch.float32) -> Dataset:
    """Draw the data set for one run.

    Args:
        data: the ``data`` config node (slope, intercept, noise, n_train, n_val, x_low, x_high,
            normalize, seed).
        seed: fallback seed when ``data.seed`` is null (the run's ``train.seed``).
        dtype: floating dtype of the tensors.

    The draw is made in float64 on the CPU with its own generator, so the same seed gives the
    same points whatever the device, dtype or the global RNG state.
    """
    gen = torch.Generator().manual_seed(int(data.seed if data.seed is not None else seed))
    n = data.n_train + data.n_val
    x = data.x_low + (data.x_high - data.x_low) * torch.rand(n, 1, generator=gen, dtype=torch.float64)
    eps = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    y = data.slope * x + data.intercept + data.noise * eps
    x_train, x_val = x[: data.n_train], x[data.n_train :]
    if data.normalize:
        # Standardise with training statistics only, so validation stays held out.
        mean, std = x_train.mean(), x_train.std().clamp_min(1e-12)
        x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    return Dataset(
        x_train.to(dtype), y[: data.n_train].to(dtype), x_val.to(dtype), y[data.n_train :].to(dtype)
    )


def baseline_loss(data: Any, seed: int) -> float:
    """The training loss of the best constant prediction (the mean training target): the
    training targets' variance. A model whose loss stays there learned nothing from x; the
    labeller reads it as ``data.baseline_loss``."""
    y = make_data(data, seed, torch.float64).y_train
    return float(((y - y.mean()) ** 2).mean())
