"""Round 2 of a fix never retries an lr round 1 already bracketed: where the rerun's own fix
would take the lr back onto or past the run's own (which failed the other way), it takes the
geometric mean of the two lrs that failed on either side."""

from __future__ import annotations

import pytest

from sweeps.diagnose import next_round


@pytest.mark.parametrize("lr,first,second,expected", [
    # swung at 0.1, stalled at 0.01 after round 1's cut, the rerun asks for 0.1 again: 0.032
    (0.1, ["optimizer.lr=0.01"], ["optimizer.lr=0.1"], ["optimizer.lr=0.032"]),
    # ... past it (a 100x raise), early stopping kept
    (1.0, ["optimizer.lr=0.1", "train.early_stop=true"],
     ["optimizer.lr=100.0", "train.early_stop=true"],
     ["optimizer.lr=0.32", "train.early_stop=true"]),
    # ... round 1 also stopped early with the epochs as a cap (10x): still only the lr changed
    (1.0, ["optimizer.lr=0.1", "train.early_stop=true", "train.epochs=2000"],
     ["optimizer.lr=100.0"], ["optimizer.lr=0.32"]),
    # stalled at 0.01, swung at 0.1 after round 1's raise, the rerun cuts back to 0.01
    (0.01, ["optimizer.lr=0.1"], ["optimizer.lr=0.01"], ["optimizer.lr=0.032"]),
    # the rerun's lr stays on round 1's side: its own fix
    (1.0, ["optimizer.lr=0.1"], ["optimizer.lr=0.01"], ["optimizer.lr=0.01"]),
    (0.001, ["optimizer.lr=0.01"], ["optimizer.lr=0.1"], ["optimizer.lr=0.1"]),
    # round 1 changed more than the lr (zero_grad restored, inputs standardised): the run's own
    # lr says nothing about the new set-up, so the rerun's fix stands
    (1.0, ["train.zero_grad=true", "optimizer.lr=0.1"], ["optimizer.lr=10.0"],
     ["optimizer.lr=10.0"]),
    (1.0, ["optimizer.lr=0.1"], ["optimizer.lr=10.0", "data.normalize=true"],
     ["optimizer.lr=10.0", "data.normalize=true"]),
    # no lr in either fix, or no lr known
    (1.0, ["train.epochs=100"], ["optimizer.lr=10.0"], ["optimizer.lr=10.0"]),
    (None, ["optimizer.lr=0.1"], ["optimizer.lr=10.0"], ["optimizer.lr=10.0"]),
])
def test_round_two_brackets_the_lr(lr, first, second, expected):
    assert next_round(lr, first, second) == expected
