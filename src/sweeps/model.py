"""Models: the explainer's nn.Linear(1, 1), polynomial features (linear in the weights, but able
to memorise noise) and a small tanh MLP."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sweeps.config import Init, ModelName, linear_layers


class PolyFeatures(nn.Module):
    """Map x (n, 1) to [x, x^2, ..., x^degree] (n, degree)."""

    def __init__(self, degree: int) -> None:
        super().__init__()
        self.register_buffer("powers", torch.arange(1, degree + 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.pow(self.powers.to(x.dtype))


def build_model(model: Any) -> nn.Module:
    """Build the model a ``model`` config node describes (on the CPU, float32; the loop moves
    it): the nn.Linear layers of ``sweeps.config.linear_layers``, after PolyFeatures for poly
    and with tanh between them for the mlp.

    Raises:
        ConfigError: an unknown ``model.name``.
    """
    linears = [nn.Linear(n_in, n_out) for n_in, n_out in linear_layers(model)]
    if model.name == ModelName.linear:
        net: nn.Module = linears[0]
    elif model.name == ModelName.poly:
        net = nn.Sequential(PolyFeatures(model.degree), *linears)
    else:  # mlp
        layers: list[nn.Module] = []
        for layer in linears[:-1]:
            layers += [layer, nn.Tanh()]
        net = nn.Sequential(*layers, linears[-1])
    if model.init == Init.zeros:
        with torch.no_grad():
            for p in net.parameters():
                p.zero_()
    return net


def linear_wb(net: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (w, b) of a single-input linear model, for the fitted-line picture; None otherwise."""
    if isinstance(net, nn.Linear) and net.in_features == 1 and net.out_features == 1:
        return net.weight.view(()), net.bias.view(())
    return None
