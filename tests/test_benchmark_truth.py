"""The generalisation benchmark's continuation truth (benchmarks/corpus/truth.py, pure numpy):
a run that never gets clearly below the loss of the best constant prediction learned nothing
from its inputs, however flat it lies, and is stalled, not healthy."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from corpus.truth import CHANCE, judge  # noqa: E402

# Three classes at frequencies 50/40/30 of 120: the best constant prediction's cross-entropy.
FREQ = np.array([50, 40, 30]) / 120
L_CONST = float(-np.sum(FREQ * np.log(FREQ)))


def _collapse(level: float, T: int) -> dict:
    """A net on raw features: huge logits at first, then a fall to ``level`` in a few epochs
    and nothing after it (saturated units), train and val alike."""
    curve = [10.4, 4.0, 1.6] + [level] * (T - 3)
    return {"train_loss": curve, "val_loss": [v + 0.003 for v in curve]}


def test_the_constant_prediction_is_the_entropy_of_the_class_frequencies():
    assert math.isclose(L_CONST, 1.0776, abs_tol=1e-4)  # < ln 3 = 1.0986: unequal classes


def test_a_run_at_the_constant_prediction_is_stalled_though_more_time_does_nothing():
    run, cont, hi = _collapse(L_CONST, 100), _collapse(L_CONST, 1000), _collapse(L_CONST, 100)
    truth = judge(run, cont, hi, None, chance=L_CONST)
    assert truth["symptom"] == "stalled"
    assert "constant prediction" in truth["why"]
    # The first five sessions' rules (no constant prediction known) called it healthy.
    assert judge(run, cont, hi, None)["symptom"] == "healthy"


def test_a_run_just_inside_the_chance_margin_is_stalled_and_one_below_it_healthy():
    inside = L_CONST * (1 - CHANCE / 2)
    below = L_CONST * (1 - 2 * CHANCE)
    for level, want in ((inside, "stalled"), (below, "healthy")):
        run = _collapse(level, 100)
        assert judge(run, _collapse(level, 1000), run, None, chance=L_CONST)["symptom"] == want


def test_a_continuation_that_learns_takes_the_run_out_of_the_chance_clause():
    # The run levels off at chance, but 10x the epochs leave it: the inputs can be learned, so
    # only the first clause judges it, and the run (10.4 -> 1.08) removed 90 % of what C
    # removes (10.4 -> 0.05): healthy. The same start but a run that only got to 5.0: stalled.
    run = _collapse(L_CONST, 100)
    cont = {"train_loss": run["train_loss"] + list(np.linspace(L_CONST, 0.05, 900)),
            "val_loss": run["val_loss"] + list(np.linspace(L_CONST, 0.2, 900))}
    truth = judge(run, cont, run, None, chance=L_CONST)
    assert truth["symptom"] == "healthy"
    assert "L_ref" not in truth["why"]
    slow = _collapse(5.0, 100)
    cont = {"train_loss": slow["train_loss"] + list(np.linspace(5.0, 0.05, 900)),
            "val_loss": slow["val_loss"] + list(np.linspace(5.0, 0.2, 900))}
    truth = judge(slow, cont, slow, None, chance=L_CONST)
    assert truth["symptom"] == "stalled"
    assert "constant prediction" not in truth["why"]


def test_swings_at_chance_are_judged_first():
    T = 100
    wave = [10.4] + [L_CONST + (2.0 if (i // 5) % 2 else 0.0) for i in range(T - 1)]
    run = {"train_loss": wave, "val_loss": wave}
    cont = {"train_loss": wave * 10, "val_loss": wave * 10}
    assert judge(run, cont, run, None, chance=L_CONST)["symptom"] == "oscillating"
