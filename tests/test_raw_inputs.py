"""A net fed raw features (scales 1 to 1,000, offsets to 2,000): its sigmoid units saturate, the
gradients vanish and the loss barely moves, whatever the lr. Standardising the inputs is the
remedy the symptom table names next to a larger lr ("raise lr, normalise inputs"); the labeller
prescribes both together where the run says its inputs were not normalised.

Every expectation comes from continuation runs of a plain-torch script written here (not this
project's loop): 10x the epochs and a 10x lr remove little more; the same net on standardised
inputs learns the classes; the lr raise alone does not.
"""

from __future__ import annotations

import math
from functools import lru_cache

import pytest
import torch

from plain_torch import minibatch_sgd, split
from sweeps.diagnose import diagnose

STALL = 1 - math.exp(-1)  # the benchmark's line: less than one time constant of what is left
NORMALIZE = "data.normalize=true"
T = 30


@lru_cache(maxsize=None)
def _script(lr: float, epochs: int, normalize: bool = False) -> tuple[list[float], list[float]]:
    """Someone's classifier: a sigmoid MLP (2 x 16) trained by shuffled minibatch SGD (batches of
    30) with cross-entropy on 3 balanced classes, 180 training points and 60 held out, whose 4
    features are on scales 1, 30, 300 and 1,000 with offsets up to 2,000; ``normalize``
    standardises them with the training statistics. (train losses, val losses), epoch 0 first."""
    g = torch.Generator().manual_seed(0)
    c = torch.arange(240) % 3
    centres = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 1.0, 0.5], [-1.0, 1.0, 0.5, -1.0]])
    z = centres[c] + 0.7 * torch.randn(240, 4, generator=g)
    x = z * torch.tensor([1.0, 30.0, 300.0, 1000.0]) + torch.tensor([0.0, 100.0, 500.0, 2000.0])
    data = split(x, c, 180, normalize)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Sigmoid(), torch.nn.Linear(16, 16),
                              torch.nn.Sigmoid(), torch.nn.Linear(16, 3))
    return minibatch_sgd(net, lr, epochs, 30, data)


def _config(lr: float, normalize: bool = False, **data) -> dict:
    return {"optimizer": {"name": "sgd", "lr": lr},
            "data": {"normalize": normalize, "n_train": 180, **data},
            "train": {"batch_size": 30, "epochs": T}}


def _lr(fix: list[str]) -> float:
    return float(next(o for o in fix if o.startswith("optimizer.lr=")).split("=", 1)[1])


@pytest.mark.parametrize("lr", [0.01, 0.1])
def test_saturated_by_raw_inputs_is_stalled_and_normalising_heals_it(lr):
    train, val = _script(lr, T)
    # The truth, from continuations: neither 10x the epochs nor a 10x lr removes much more ...
    ref = min(min(_script(lr, 10 * T)[0]), min(_script(10 * lr, T)[0]), min(train))
    assert train[0] - train[-1] < STALL * (train[0] - ref)
    # ... while the same net on standardised inputs learns the classes (at an lr of 1; on the
    # raw inputs that lr leaves it near chance).
    assert _script(1.0, T, normalize=True)[0][-1] < 0.5 * math.log(3) < _script(1.0, T)[0][-1]
    d = diagnose(train, val, config=_config(lr))
    assert d.symptom == "stalled", d.evidence
    assert NORMALIZE in d.fix and _lr(d.fix) > lr, d.fix
    assert "not normalised" in d.cause
    # The fix, applied whole, heals: it removes more than one time constant of what 10x its
    # epochs remove, far below chance (ln 3) ...
    new = _lr(d.fix)
    healed, _ = _script(new, T, normalize=True)
    longer, _ = _script(new, 10 * T, normalize=True)
    assert healed[0] - healed[-1] >= STALL * (healed[0] - min(longer))
    assert healed[-1] < 0.5 * math.log(3)
    # ... and the lr raise alone does not: the saturated net ends no lower than it started.
    assert _script(new, T)[0][-1] >= train[0]


def test_inputs_on_a_unit_scale_are_not_told_to_normalise():
    """The same stalled curve, from a run whose config gives its inputs' range: uniform on
    [-1, 1] is already on a unit scale (spread 1/sqrt(3)); on [0, 1000] it is not."""
    train, val = _script(0.01, T)
    unit = diagnose(train, val, config=_config(0.01, x_low=-1.0, x_high=1.0))
    wide = diagnose(train, val, config=_config(0.01, x_low=0.0, x_high=1000.0))
    assert unit.symptom == wide.symptom == "stalled"
    assert NORMALIZE not in unit.fix and NORMALIZE in wide.fix


def test_another_scripts_normalize_param_is_its_own_switch():
    """A script logging ``lr`` and ``normalize`` is told to change them by those names."""
    train, val = _script(0.01, T)
    d = diagnose(train, val, config={"lr": "0.01", "normalize": "False", "batch_size": "30"})
    assert d.symptom == "stalled"
    assert "normalize: False -> True" in d.fix and any(f.startswith("lr: 0.01 -> ") for f in d.fix)
