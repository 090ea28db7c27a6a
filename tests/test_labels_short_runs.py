"""Short minibatch runs whose curves the labeller reads at their ends, where its smoothing is
cut short: each case's expected label comes from continuation runs of the same set-up (10x the
epochs, 10x the lr; test_generalisation._truth restates the benchmark's ground-truth rules),
never from the labeller.
  * A run still falling steeply when it stops: the smoothed level at its last epoch describes
    the curve a whole epoch back (half an epoch back elsewhere), so a last quarter of 2 epochs
    read as 2 was read 25% too slow, and the floor it projects too high (stalled called
    healthy).
  * A validation loss still climbing when the run stops: its level is read as the benchmark's
    rules define it, a running median of 5 epochs, not through the train curve's neighbour
    averages, which lag a rising end by another half epoch (a turn just past the 10% line
    read just below it, and one just below read above it).
"""

from __future__ import annotations

import pytest
from test_generalisation import _broad_spectrum as _minibatch, _truth  # minibatch SGD, least squares

from sweeps.diagnose import diagnose


SHORT = [
    # removed 0.44 of what 10 T removes; the last level read at its epoch: 0.53, else 0.65
    pytest.param(_minibatch(20, 20, 1.0, 2, 10), 0.003, 20, "stalled", id="20-epochs-stalled"),
    # removed 0.45; 10 epochs, the last quarter 2 of them: 0.61, else 0.65
    pytest.param(_minibatch(20, 20, 0.5, 1, 5), 0.003, 10, "stalled", id="10-epochs-stalled"),
    # the same set-up at 3x the lr: removed 0.88 of what 10 T removes
    pytest.param(_minibatch(20, 20, 0.5, 1, 5), 0.01, 20, "healthy", id="20-epochs-healthy"),
    # val ends 10.0% above its minimum (epoch 8), 54% at 10 T; read through neighbour
    # averages: 9.6%
    pytest.param(_minibatch(20, 40, 1.0, 2, 10), 0.01, 30, "overfitting", id="val-turn-at-10pct"),
    # 10.4% (epoch 5), 32% at 10 T; through neighbour averages 9.7%
    pytest.param(_minibatch(20, 40, 0.5, 3, 10), 0.03, 20, "overfitting", id="val-turn-short"),
    # 9.9% at T (so not overfitting, though 10 T takes it to 20%); neighbour averages: 10.5%
    pytest.param(_minibatch(20, 40, 0.5, 2, 5), 0.03, 15, "healthy", id="val-up-9.9pct"),
]


@pytest.mark.parametrize("run,lr,T,label", SHORT)
def test_short_runs_read_at_their_ends(run, lr, T, label):
    (train, val), expected, m = _truth(run, lr, T)
    assert expected == label, m  # the continuations say so; now the labeller must
    cfg = {"optimizer": {"name": "sgd", "lr": lr}, "train": {"epochs": T}}
    d = diagnose(train, val, config=cfg)
    assert d.symptom == expected, d.evidence
