"""Models: the explainer's nn.Linear(1, 1), polynomial features (linear in the weights, but able
to memorise noise) and a small tanh MLP."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class PolyFeatures(nn.Module):
    """Map x (n, 1) to [x, x^2, ..., x^degree] (n, degree)."""

    def __init__(self, degree: int) -> None:
        super().__init__()
        self.register_buffer("powers", torch.arange(1, degree + 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.pow(self.powers.to(x.dtype))


def build_model(model: Any) -> nn.Module:
    """Build the model named by the ``model`` config node (on the CPU, float32; the loop moves it).

    Raises:
        ValueError: an unknown ``model.name``.
    """
    if model.name == "linear":
        net: nn.Module = nn.Linear(1, 1)
    elif model.name == "poly":
        net = nn.Sequential(PolyFeatures(model.degree), nn.Linear(model.degree, 1))
    elif model.name == "mlp":
        layers: list[nn.Module] = []
        width = 1
        for _ in range(model.layers):
            layers += [nn.Linear(width, model.hidden), nn.Tanh()]
            width = model.hidden
        net = nn.Sequential(*layers, nn.Linear(width, 1))
    else:
        raise ValueError(f"model.name={model.name!r}: must be one of ['linear', 'poly', 'mlp']")
    if model.init == "zeros":
        with torch.no_grad():
            for p in net.parameters():
                p.zero_()
    return net


def linear_wb(net: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (w, b) of a single-input linear model, for the fitted-line picture; None otherwise."""
    if isinstance(net, nn.Linear) and net.in_features == 1 and net.out_features == 1:
        return net.weight.view(()), net.bias.view(())
    return None
