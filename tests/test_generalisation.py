"""The labeller on runs unlike the preset's, one table per failure class the generalisation
benchmark found. Each case trains a small run in numpy and derives its expected label from
continuation runs of the same set-up (10x the epochs, 10x the lr), never from the labeller:
  oscillating  the loss still climbs back, in the last T of 10 T epochs, to >= 3x its running
               minimum by >= 1% of what 10 T removes (a swing on a log scale);
  stalled      the run removed < 1 - 1/e of what 10 T epochs or a 10x lr remove;
  healthy      neither.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sweeps.diagnose import Diagnosis, diagnose

STALL = 1 - math.exp(-1)


def _unnormalised_regression(lr: float, epochs: int) -> tuple[list[float], list[float]]:
    """Minibatch SGD (shuffled, batches of 20) on a linear regression whose features are on
    scales 1..20 with offsets up to 40 and whose weights start far off: the loss spans decades."""
    g = np.random.default_rng(0)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = g.standard_normal((n, 3)) * [1, 5, 20] + [0, 10, 40]
        return np.c_[x, np.ones(n)], x @ [3, -2, 1] + 150 + 30 * g.standard_normal(n)

    x, y = sample(200)
    xv, yv = sample(100)
    w, order = np.array([30.0, 30.0, 30.0, 0.0]), np.random.default_rng(1)
    train, val = [], []
    for _ in range(epochs):
        total, perm = 0.0, order.permutation(len(y))
        for i in range(0, len(y), 20):
            idx = perm[i:i + 20]
            res = x[idx] @ w - y[idx]
            total += float(res @ res)
            w = w - lr * 2 * x[idx].T @ res / len(idx)
        train.append(total / len(y))
        val.append(float(np.mean((xv @ w - yv) ** 2)))
    return train, val


def _adagrad_logistic(lr: float, epochs: int) -> list[float]:
    """Full-batch Adagrad on a logistic regression over raw features (scales 1..100)."""
    g = np.random.default_rng(0)
    x = g.standard_normal((300, 5)) * [1, 10, 100, 5, 50] + [0, 20, 300, 1, 100]
    y = ((x - x.mean(0)) @ [1, 0.2, 0.02, -0.5, 0.03] + 0.5 * g.standard_normal(300) > 0) * 1.0
    xb = np.c_[x, np.ones(300)]
    w, acc, losses = np.zeros(6), np.zeros(6), []
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        losses.append(float(-np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))))
        grad = xb.T @ (p - y) / len(y)
        acc += grad**2
        w = w - lr * grad / (np.sqrt(acc) + 1e-10)
    return losses


def _plateau(lr: float, epochs: int) -> list[float]:
    """Full-batch gradient descent on a softmax regression over 10 classes from a tiny random
    init: at a tiny lr the loss sits at chance level, moving in the 4th digit."""
    g = np.random.default_rng(0)
    x = g.standard_normal((200, 8))
    y = np.argmax(x @ g.standard_normal((8, 10)), axis=1)
    w, losses = 0.01 * g.standard_normal((8, 10)), []
    for _ in range(epochs):
        z = x @ w
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        losses.append(float(-np.mean(np.log(p[np.arange(200), y]))))
        p[np.arange(200), y] -= 1
        w = w - lr * x.T @ p / 200
    return losses


def _log_swing(curve: list[float], reducible: float) -> float:
    """The largest multiple of its running minimum the loss climbs back to, among climbs of at
    least 1% of the reducible loss."""
    a = np.asarray(curve)
    low = np.minimum.accumulate(a)
    big = (a - low >= 0.01 * reducible) & (low > 0)
    return float(np.max(a[big] / low[big])) if np.any(big) else 0.0


@pytest.mark.parametrize("lr", [
    5e-4,
    pytest.param(4.8e-4, marks=pytest.mark.xfail(strict=True, reason=(
        "known miss: its climbs are 3-10% of the reducible loss; counting climbs that small "
        "(osc_min_climb < 0.1) costs the preset 2 of its 141/144"))),
])
def test_swings_on_a_log_scale_are_oscillating(lr):
    """Failure class 1: a loss in the thousands swinging by multiples of itself to the end (a
    small share of a start in the millions) was called healthy."""
    T = 100
    train, val = _unnormalised_regression(lr, T)
    long_train, _ = _unnormalised_regression(lr, 10 * T)
    reducible = train[0] - min(long_train)
    expected = "oscillating" if _log_swing(long_train[-T:], reducible) >= 3 \
        and _log_swing(train[T // 2:], reducible) >= 3 else "healthy"
    assert expected == "oscillating"  # the continuation says so; now the labeller must
    assert diagnose(train, val).symptom == expected


def _stall_truth(run, lr: float, T: int) -> tuple[list[float], str]:
    curve = run(lr, T)
    ref = min(min(run(lr, 10 * T)), min(run(10 * lr, T)))
    removed = (curve[0] - curve[-1]) / (curve[0] - ref)
    return curve, "stalled" if removed < STALL else "healthy"


# A floor read per doubling of time (a power law keeps its pace per doubling) labels these
# right, but costs the preset 4 of its 141/144 runs and the calibration part 1: not used.
KNOWN_SLOW = pytest.mark.xfail(strict=True, reason="known miss: a decelerating descent whose "
                               "floor the quarter-by-quarter decay puts too high")

SLOW = [
    # failure class 3: slow, smooth descents that 10x the time or lr take much further
    pytest.param(_adagrad_logistic, 1e-3, 200, id="adagrad-logistic-1e-3", marks=KNOWN_SLOW),
    pytest.param(_adagrad_logistic, 3e-3, 200, id="adagrad-logistic-3e-3", marks=KNOWN_SLOW),
    pytest.param(_adagrad_logistic, 1e-2, 200, id="adagrad-logistic-1e-2-healthy"),
    pytest.param(_plateau, 1e-4, 30, id="chance-level-plateau"),
    # fell 2% of its start: a curve that barely moved has shown no floor (barely_moved)
    pytest.param(_adagrad_logistic, 1e-4, 200, id="adagrad-logistic-1e-4"),
]


@pytest.mark.parametrize("run,lr,T", SLOW)
def test_slow_descents_are_stalled(run, lr, T):
    curve, expected = _stall_truth(run, lr, T)
    assert diagnose(curve, None).symptom == expected


def test_confidence_grades_the_margin():
    """The margin is how far the deciding measure cleared its threshold: a run far past the
    stall line is a clear stall, one just past it borderline."""
    far = [1.0 - 0.001 * i for i in range(100)]  # a straight, barely sloping fall: far from done
    d = diagnose(far, None)
    assert d.symptom == "stalled" and d.confidence == "clear" and d.margin >= 1.5
    assert "Confidence: clear" in d.markdown()
    blown = diagnose([1.0, 2.0, float("nan")], None)
    assert blown.symptom == "diverged" and blown.confidence == "clear"
    assert math.isinf(blown.margin)


def test_confidence_borderline_near_the_stall_line():
    """Exponential convergence with rate k over T epochs removes 1 - exp(-kT) of the reducible
    loss: kT = 1 sits on the stall line (1 - 1/e), so the label there is borderline."""
    T = 200
    curve = [0.1 + math.exp(-1.0 * i / T) for i in range(T)]
    d: Diagnosis = diagnose(curve, None)
    assert d.confidence == "borderline", d.evidence
