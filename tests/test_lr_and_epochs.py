"""A stall whose pace asks for more than the largest lr raise a fix guesses (max_lr_factor,
1000x): the time a run gets is lr x epochs, so the fix raises the lr by that much and multiplies
the epochs by the rest.

Every expectation comes from continuation runs of a plain-torch script written here (not this
project's loop): at the raised lr alone the run is still stalled (10x its epochs remove far
more); with the prescribed epochs too it removes what 10x those epochs would.
"""

from __future__ import annotations

import math
from functools import lru_cache

import pytest
import torch

from plain_torch import minibatch_sgd, split
from sweeps.diagnose import diagnose

STALL = 1 - math.exp(-1)  # the benchmark's line: less than one time constant of what is left
T = 10


@lru_cache(maxsize=None)
def _script(lr: float, epochs: int) -> tuple[list[float], list[float]]:
    """Someone's classifier: a ReLU MLP (2 x 32) trained by shuffled minibatch SGD (batches of
    100, 4 a epoch) with cross-entropy on 5 classes, 400 standardised training points and 100
    held out. (train losses, val losses), epoch 0 first."""
    g = torch.Generator().manual_seed(0)
    c = torch.arange(500) % 5
    x = torch.randn(5, 20, generator=g)[c] + torch.randn(500, 20, generator=g)
    data = split(x, c, 400)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32),
                              torch.nn.ReLU(), torch.nn.Linear(32, 5))
    return minibatch_sgd(net, lr, epochs, 100, data)


def _removed_share(lr: float, epochs: int) -> float:
    """What the run removed, as a share of what 10x its epochs remove (the continuation)."""
    train, _ = _script(lr, epochs)
    return (train[0] - train[-1]) / (train[0] - min(_script(lr, 10 * epochs)[0]))


def _value(fix: list[str], key: str) -> float:
    return float(next(o for o in fix if o.startswith(key + "=")).split("=", 1)[1])


@pytest.mark.parametrize("lr", [1e-4, 5e-5])
def test_a_stall_beyond_the_largest_lr_raise_gets_the_rest_in_epochs(lr):
    train, val = _script(lr, T)
    # The truth, from continuations: the run is stalled ...
    assert _removed_share(lr, T) < STALL
    d = diagnose(train, val, config={"optimizer": {"name": "sgd", "lr": lr},
                                     "data": {"normalize": True, "n_train": 400},
                                     "train": {"batch_size": 100, "epochs": T}})
    assert d.symptom == "stalled", d.evidence
    new_lr, epochs = _value(d.fix, "optimizer.lr"), int(_value(d.fix, "train.epochs"))
    assert new_lr == pytest.approx(1000 * lr) and epochs > T, d.fix
    assert "the epochs make up the rest" in d.cause
    # ... and so is the lr raise alone, for the run's own epochs: 10x them remove far more ...
    assert _removed_share(new_lr, T) < STALL
    # ... while the fix, applied whole, removes what 10x its epochs would (no longer stalled),
    # and at no more epochs than the pace asked for (the next power-of-ten step of them falls
    # short: 1/10 of them at the raised lr is stalled).
    assert _removed_share(new_lr, epochs) >= STALL
    assert _removed_share(new_lr, max(epochs // 10, 1)) < STALL


def test_no_epochs_where_the_lr_raise_is_enough():
    """A stall the largest lr raise covers is not also told to run longer."""
    train, val = _script(0.01, T)
    d = diagnose(train, val, config={"optimizer": {"name": "sgd", "lr": 0.01},
                                     "data": {"normalize": True, "n_train": 400},
                                     "train": {"batch_size": 100, "epochs": T}})
    assert d.symptom == "stalled", d.evidence
    assert not any(o.startswith("train.epochs=") for o in d.fix), d.fix
    assert "epochs make up" not in d.cause


def test_another_scripts_epochs_param_is_its_own():
    """A script logging ``lr`` and ``epochs`` is told to change them by those names."""
    train, val = _script(1e-4, T)
    d = diagnose(train, val, config={"lr": "0.0001", "epochs": str(T), "batch_size": "100"})
    assert d.symptom == "stalled"
    assert "lr: 0.0001 -> 0.1" in d.fix and f"epochs: {T} -> " in " ".join(d.fix), d.fix
