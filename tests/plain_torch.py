"""Someone else's training script, for the tests whose expectations come from continuation runs:
plain torch (not this project's loop), shuffled minibatch SGD with cross-entropy."""

from __future__ import annotations

import math

import torch


def minibatch_sgd(net: torch.nn.Module, lr: float, epochs: int, batch: int,
                  data: tuple[torch.Tensor, ...], optimizer: type = torch.optim.SGD
                  ) -> tuple[list[float], list[float]]:
    """Train ``net`` on ``data`` = (x_train, y_train, x_val, y_val) by SGD (or ``optimizer``) at
    ``lr`` for ``epochs`` epochs of shuffled minibatches of ``batch`` (the order seeded, the
    same for every lr). (train losses, val losses) over the whole sets, epoch 0 (before any
    step) first."""
    xt, yt, xv, yv = data
    opt = optimizer(net.parameters(), lr=lr)
    loss, order = torch.nn.functional.cross_entropy, torch.Generator().manual_seed(1)
    train, val = [], []
    for epoch in range(epochs + 1):
        if epoch:
            perm = torch.randperm(len(xt), generator=order)
            for i in range(0, len(xt), batch):
                opt.zero_grad()
                loss(net(xt[perm[i:i + batch]]), yt[perm[i:i + batch]]).backward()
                opt.step()
        with torch.no_grad():
            train.append(float(loss(net(xt), yt)))
            val.append(float(loss(net(xv), yv)))
    return train, val


def full_batch_adam(net: torch.nn.Module, lr: float, epochs: int,
                    data: tuple[torch.Tensor, ...]) -> tuple[list[float], list[float]]:
    """Train ``net`` on ``data`` = (x_train, y_train, x_val, y_val) by full-batch Adam at ``lr``
    on the MSE for ``epochs`` steps (stopping at a non-finite loss). (train losses, each taken
    before its step, val losses after it)."""
    xt, yt, xv, yv = data
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    train, val = [], []
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(xt), yt)
        loss.backward()
        opt.step()
        with torch.no_grad():
            val.append(float(torch.nn.functional.mse_loss(net(xv), yv)))
        train.append(float(loss.detach()))
        if not math.isfinite(train[-1]):
            break
    return train, val


def split(x: torch.Tensor, y: torch.Tensor, n_train: int,
          normalize: bool = True) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_val, y_val): the first ``n_train`` points train, the rest validate;
    ``normalize`` standardises the inputs with the training statistics."""
    xt, yt, xv, yv = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    if normalize:
        mu, sd = xt.mean(0), xt.std(0)
        xt, xv = (xt - mu) / sd, (xv - mu) / sd
    return xt, yt, xv, yv

