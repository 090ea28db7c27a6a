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


# Without the config these read healthy: a floor read per doubling of time (a power law keeps
# its pace per doubling) labels them right, but costs the preset 4 of its 141/144 runs and the
# calibration part 1. Their ratio of drops jumps (0.28 -> 0.72 -> 0.81 a quarter): fitted as a
# power law, p < 1, no tail at all, so _power_tail leaves them too (the preset's healthy
# Adam/RMSprop runs at lr 1e-3 rise the same way). Told the optimizer is Adagrad, the labeller
# reads them on Adagrad's own clock (steps shrinking as 1/sqrt(epoch)), where 10x the lr goes
# 10x as far, and they are stalled.
KNOWN_SLOW = pytest.mark.xfail(strict=True, reason="known miss without the config: a "
                               "decelerating descent whose floor the quarter-by-quarter decay "
                               "puts too high")

SLOW = [
    # failure class 3: slow, smooth descents that 10x the time or lr take much further
    pytest.param(_adagrad_logistic, 1e-3, 200, None, id="adagrad-logistic-1e-3-no-config",
                 marks=KNOWN_SLOW),
    pytest.param(_adagrad_logistic, 1e-3, 200, "adagrad", id="adagrad-logistic-1e-3"),
    pytest.param(_adagrad_logistic, 3e-3, 200, "adagrad", id="adagrad-logistic-3e-3"),
    pytest.param(_adagrad_logistic, 1e-3, 50, "adagrad", id="adagrad-logistic-1e-3-T50"),
    pytest.param(_adagrad_logistic, 3e-3, 50, "adagrad", id="adagrad-logistic-3e-3-T50"),
    pytest.param(_adagrad_logistic, 1e-2, 200, "adagrad", id="adagrad-logistic-1e-2-healthy"),
    pytest.param(_adagrad_logistic, 1e-2, 200, None, id="adagrad-logistic-1e-2-healthy-no-config"),
    pytest.param(_plateau, 1e-4, 30, None, id="chance-level-plateau"),
    # fell 2% of its start: a curve that barely moved has shown no floor (barely_moved)
    pytest.param(_adagrad_logistic, 1e-4, 200, "adagrad", id="adagrad-logistic-1e-4"),
]


@pytest.mark.parametrize("run,lr,T,optimizer", SLOW)
def test_slow_descents_are_stalled(run, lr, T, optimizer):
    curve, expected = _stall_truth(run, lr, T)
    cfg = {"optimizer": {"name": optimizer, "lr": lr}, "train": {"epochs": T}} \
        if optimizer else None
    assert diagnose(curve, None, config=cfg).symptom == expected


def _broad_spectrum(n: int, d: int, noise: float, seed: int, batch: int):
    """Minibatch SGD (shuffled batches) on a least-squares fit with about as many weights as
    points (d/n from 1/2 to 2): its curvatures spread down to nearly flat ones, so the loss is
    a mixture of many geometric decays whose drops slow down all along (their ratio keeps
    rising, like a power law's), not a few that settle into one rate."""
    def run(lr: float, epochs: int, _schedule=None):
        w_true = np.zeros(d)
        w_true[:3] = [1.0, -1.0, 0.5]
        x, y, xv, yv = _regression(n, d, seed, w_true, noise)
        w, order, train, val = np.zeros(d), np.random.default_rng(seed + 100), [], []
        for _ in range(epochs):
            res = x @ w - y
            train.append(float(res @ res / n))
            val.append(float(np.mean((xv @ w - yv) ** 2)))
            perm = order.permutation(n)
            for i in range(0, n, batch):
                idx = perm[i:i + batch]
                w = w - lr * 2 * x[idx].T @ (x[idx] @ w - y[idx]) / len(idx)
        return train, val
    return run


KNOWN_BROAD = pytest.mark.xfail(strict=True, reason="known miss: removed 0.71 of what 10 T "
                                "or a 10x lr remove (floor 0.41); the power law read off its "
                                "last three quarters projects a floor of 0.19 (read: 0.63)")

BROAD = [
    # (n points, d weights, noise, seed, batch), lr, T, what the continuations say
    pytest.param((20, 40, 1.0, 1, 5), 0.003, 10, "stalled", id="40w-20pts-lr3e-3"),
    pytest.param((20, 20, 1.0, 3, 5), 0.003, 10, "stalled", id="20w-20pts-lr3e-3"),
    pytest.param((40, 20, 1.0, 0, 10), 0.003, 20, "stalled", id="20w-40pts-lr3e-3"),
    pytest.param((40, 40, 1.0, 1, 10), 0.01, 10, "healthy", id="40w-40pts-lr1e-2"),
    pytest.param((20, 20, 0.5, 2, 5), 0.01, 10, "healthy", id="20w-20pts-lr1e-2"),
    pytest.param((40, 20, 1.0, 2, 10), 0.003, 30, "healthy", id="20w-40pts-lr3e-3-T30",
                 marks=KNOWN_BROAD),
]


@pytest.mark.parametrize("setup,lr,T,label", BROAD)
def test_broad_spectrum_descents(setup, lr, T, label):
    """Failure class 3 again: a smooth descent whose drops keep slowing down. A constant ratio
    of drops (the last one) is the least such a tail can leave (log-convex drops), and read
    these runs at 0.64-0.75 removed where the continuations say 0.51-0.58: called healthy.
    The power law fitted to the last three quarters' drops follows the ratio as it rises."""
    (train, val), expected, _ = _truth(_broad_spectrum(*setup), lr, T)
    assert expected == label  # the continuations say so; now the labeller must
    assert diagnose(train, val).symptom == expected


def test_power_tail_follows_a_power_law():
    """Drops of an exact power law are followed to the sum of that law over the horizon; a
    geometric series (ratio constant) and a ratio that jumps (p <= 1) add nothing."""
    from sweeps.diagnose.curves import _power_tail
    c, p, m = 7.0, 2.5, 36
    d2, d3, d4 = ((c - 2) ** -p, (c - 1) ** -p, c ** -p)
    want = sum(((c + k) / c) ** -p for k in range(1, m + 1))
    assert _power_tail(d2, d3, d4, m) == pytest.approx(want, rel=1e-6)
    assert _power_tail(1.0, 0.7, 0.49, m) == 0.0
    assert _power_tail(1.0, 0.5, 0.45, m) == 0.0  # 1/(1-rho) grows 3 a quarter: p = 1/3
    assert _power_tail(1.0, 0.8, 0.6, m) == 0.0  # speeding up: no slowing tail to follow


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


# --- The ground-truth rules of benchmarks/generalisation.py, restated here (own code, same
# thresholds) and applied to the run (T epochs), C (the same set-up for 10 T epochs, a schedule
# stretched over them), Hi (10x the lr for T epochs) and, under a schedule, K (the starting lr
# held constant for 10 T epochs). First match wins.

GROWTH, SWING, DECADE_SWING, MIN_CLIMB = 100.0, 0.1, 3.0, 0.01
VAL_RISE, VAL_NOISE, VAL_MATERIAL, TRAIN_FALL = 0.1, 4.0, 0.05, 0.01


def _running_median(a: np.ndarray, w: int) -> np.ndarray:
    h = w // 2
    return np.array([np.median(a[max(0, i - h): i + h + 1]) for i in range(len(a))])


def _swing(curve: np.ndarray, reducible: float) -> tuple[float, float]:
    """(largest climb above the running minimum / R, largest multiple of the running minimum
    climbed back to among climbs >= MIN_CLIMB x R)."""
    low = np.minimum.accumulate(curve)
    climb = curve - low
    big = (climb >= MIN_CLIMB * reducible) & (low > 0)
    ratio = float(np.max(curve[big] / low[big])) if big.any() else 0.0
    return float(climb.max()) / reducible, ratio


def _rules(run, cont, hi, const=None) -> tuple[str, dict]:
    """The label the continuations give (run, cont, hi, const: (train, val) pairs) and the
    measures that decided it."""
    tr, va = np.asarray(run[0], float), np.asarray(run[1], float)
    c_tr, c_va = np.asarray(cont[0], float), np.asarray(cont[1], float)
    T, l0 = len(tr), float(tr[0])
    m: dict = {}
    if not (np.all(np.isfinite(tr)) and np.all(np.isfinite(va))) or tr[-1] >= GROWTH * l0:
        return "diverged", m
    m.update(end_over_L0=tr[-1] / l0, C_end_over_L0=c_tr[-1] / l0)
    if tr[-1] >= l0 and (not np.all(np.isfinite(c_tr)) or c_tr[-1] >= GROWTH * l0):
        return "diverged", m
    every = np.concatenate([tr, c_tr, np.asarray(hi[0], float)]
                           + ([np.asarray(const[0], float)] if const else []))
    reducible = l0 - min(float(np.min(every[np.isfinite(every)])), l0)
    m["R"] = reducible
    rel, ratio = _swing(tr[T // 2:], reducible)
    m.update(swing=rel, swing_ratio=ratio)
    if rel >= SWING or ratio >= DECADE_SWING:
        c_rel, c_ratio = _swing(c_tr[-T:], reducible) if np.all(np.isfinite(c_tr)) \
            else (math.inf, math.inf)
        m.update(C_swing=c_rel, C_swing_ratio=c_ratio)
        if c_rel >= SWING or c_ratio >= DECADE_SWING:
            return "oscillating", m
    sm = _running_median(tr, 3)
    m["removed"] = (l0 - sm[-1]) / reducible
    vs = _running_median(va, 5)
    i = int(np.argmin(vs))
    rise = vs[-1] - vs[i]
    d = np.diff(va)
    jitter = 1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2)
    c_end = _running_median(c_va[-5:], 5)[-1] if np.all(np.isfinite(c_va[-5:])) else math.inf
    m.update(val_min_epoch=i, val_rise=rise / abs(vs[i]), val_rise_10T=(c_end - vs[i]) / abs(vs[i]),
             train_fall_after_val_min=(sm[i] - sm[-1]) / reducible)
    if (rise >= VAL_RISE * abs(vs[i]) and rise >= VAL_NOISE * jitter
            and T - 1 - i >= max(5, 0.2 * T) and va[0] - vs[i] >= VAL_MATERIAL * abs(va[0])
            and sm[i] - sm[-1] >= TRAIN_FALL * reducible
            and c_end - vs[i] >= VAL_RISE * abs(vs[i])):
        return "overfitting", m
    return ("stalled" if m["removed"] < STALL else "healthy"), m


def _truth(run, lr: float, T: int, schedule: str | None = None):
    """run(lr, epochs, schedule) -> (train, val). Returns (the run, its label, the measures)."""
    with np.errstate(all="ignore"):
        curves = run(lr, T, schedule)
        const = run(lr, 10 * T, None) if schedule else None
        label, m = _rules(curves, run(lr, 10 * T, schedule), run(10 * lr, T, schedule), const)
    return curves, label, m


def _regression(n: int, d: int, seed: int, w_true, noise: float, scale=1.0, n_val: int = 200):
    g = np.random.default_rng(seed)
    x, xv = g.standard_normal((n, d)) * scale, g.standard_normal((n_val, d)) * scale
    y = x @ w_true + noise * g.standard_normal(n)
    yv = xv @ w_true + noise * g.standard_normal(n_val)
    return x, y, xv, yv


def _lr_at(e: int, lr: float, T: int, schedule: str | None) -> float:
    if schedule == "cosine":
        return 0.5 * lr * (1 + math.cos(math.pi * e / T))
    if schedule == "warmup_cosine":
        w = max(1, int(0.1 * T))
        return lr * (e + 1) / w if e < w else 0.5 * lr * (1 + math.cos(math.pi * (e - w) / (T - w)))
    return lr


def _gd(x, y, xv, yv, lr: float, epochs: int, schedule: str | None = None):
    """Full-batch gradient descent on the mean squared error (loss logged before each step)."""
    w, train, val = np.zeros(x.shape[1]), [], []
    for e in range(epochs):
        res = x @ w - y
        train.append(float(res @ res / len(y)))
        val.append(float(np.mean((xv @ w - yv) ** 2)))
        w = w - _lr_at(e, lr, epochs, schedule) * 2 * x.T @ res / len(y)
    return train, val


# failure class 2: Adam whose train and val losses rise and fall together ------------------------

def _adam_minibatch(seed: int):
    """Minibatch Adam (batches of 10, shuffled) on a 5-weight linear regression: at a large lr
    its sign-like steps of about lr keep kicking the weights around the minimum."""
    def run(lr: float, epochs: int, _schedule=None):
        x, y, xv, yv = _regression(80, 4, seed, [1.0, -2.0, 0.5, 1.5], 0.2, n_val=40)
        x, xv = np.c_[x, np.ones(80)], np.c_[xv, np.ones(40)]
        y, yv = y + 0.3, yv + 0.3
        w, m, v, t, order = np.zeros(5), np.zeros(5), np.zeros(5), 0, np.random.default_rng(1)
        train, val = [], []
        for _ in range(epochs):
            res = x @ w - y
            train.append(float(res @ res / 80))
            val.append(float(np.mean((xv @ w - yv) ** 2)))
            perm = order.permutation(80)
            for i in range(0, 80, 10):
                idx, t = perm[i:i + 10], t + 1
                grad = 2 * x[idx].T @ (x[idx] @ w - y[idx]) / len(idx)
                m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad**2
                w = w - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        return train, val
    return run


@pytest.mark.parametrize("seed,lr", [
    pytest.param(1, 1.0, id="adam-lr1-seed1"),
    pytest.param(0, 1.0, id="adam-lr1-seed0", marks=pytest.mark.xfail(strict=True, reason=(
        "known miss: swings to 14x the running minimum (0.10 R) in the 2nd half, train and val "
        "moving together, called healthy"))),
    pytest.param(0, 0.3, id="adam-lr0.3-seed0", marks=pytest.mark.xfail(strict=True, reason=(
        "known miss: log-scale swings (x3.8 its running minimum, 1.5% of R) called healthy"))),
])
def test_adam_swinging_together_is_not_overfitting(seed, lr):
    T = 100
    (train, val), expected, m = _truth(_adam_minibatch(seed), lr, T)
    assert expected == "oscillating", m
    assert expected != "overfitting"
    cfg = {"optimizer": {"name": "adam", "lr": lr}, "train": {"epochs": T}}
    assert diagnose(train, val, config=cfg).symptom == expected


# failure class 4: overfitting that starts late, train still falling ------------------------------

def _few_noisy_points(n: int, strong: int, weak: int, weak_scale: float, noise: float, seed: int):
    """Plain GD on a linear regression with more features than points: `strong` features of
    scale 1 (the first three carry the signal) and `weak` ones of scale `weak_scale` that can
    only fit the noise, slowly (their curvature is weak_scale**2 x weak / n)."""
    def run(lr: float, epochs: int, schedule=None):
        d = strong + weak
        w_true = np.zeros(d)
        w_true[:3] = [1.0, -1.0, 0.5]
        scale = np.r_[np.ones(strong), weak_scale * np.ones(weak)]
        return _gd(*_regression(n, d, seed, w_true, noise, scale), lr, epochs, schedule)
    return run


LATE_OVERFIT = [
    # 20 points, 3 signal features + 40 weak ones at 0.03: the weak ones fit the noise over
    # thousands of epochs, so train still falls (removed 0.65 of what 10 T removes)
    pytest.param(_few_noisy_points(20, 3, 40, 0.03, 1.5, 1), 0.1, 1000, id="weak-features"),
    # 20 points, 20 features (the interpolation threshold) at a small lr: val turns at 37% of T
    pytest.param(_few_noisy_points(20, 20, 0, 1.0, 0.5, 0), 0.01, 1000, id="square-late"),
]


@pytest.mark.parametrize("run,lr,T", LATE_OVERFIT)
def test_late_overfitting_while_train_falls(run, lr, T):
    (train, val), expected, m = _truth(run, lr, T)
    assert expected == "overfitting", m  # val at 10 T still >= 10% above its minimum
    assert m["val_rise_10T"] >= VAL_RISE and T - 1 - m["val_min_epoch"] >= 0.2 * T
    cfg = {"optimizer": {"name": "sgd", "lr": lr}, "train": {"epochs": T}}
    assert diagnose(train, val, config=cfg).symptom == expected


# new class A: a decaying lr schedule ------------------------------------------------------------

def _scheduled(lr: float, epochs: int, schedule: str | None):
    """Full-batch GD on a well-conditioned 4-weight linear regression under an lr schedule."""
    x, y, xv, yv = _regression(60, 3, 0, [2.0, -3.0, 1.0], 0.5, n_val=20)
    return _gd(np.c_[x, np.ones(60)], y + 0.5, np.c_[xv, np.ones(20)], yv + 0.5, lr, epochs,
               schedule)


SCHEDULED = [
    # flattens only because the lr decayed: the starting lr held for 10 T removes far more
    pytest.param("warmup_cosine", 0.002, 200, "stalled", id="warmup-cosine-stalled"),
    pytest.param("warmup_cosine", 0.01, 50, "stalled", id="warmup-cosine-short-stalled"),
    # removed 0.59 of what the constant lr removes (a miss until the floor compared each
    # quarter's drop over the same length of time on the run's clock)
    pytest.param("cosine", 0.005, 100, "stalled", id="cosine-stalled"),
    # did converge within its schedule
    pytest.param("warmup_cosine", 0.05, 100, "healthy", id="warmup-cosine-converged"),
]


@pytest.mark.parametrize("schedule,lr,T,label", SCHEDULED)
def test_schedules(schedule, lr, T, label):
    (train, val), expected, m = _truth(_scheduled, lr, T, schedule)
    assert expected == label, m
    cfg = {"train": {"lr_schedule": schedule, "epochs": T}, "optimizer": {"name": "sgd", "lr": lr}}
    assert diagnose(train, val, config=cfg).symptom == expected


# new class B: zero_grad() forgotten (the gradient accumulates) ----------------------------------

def _accumulating(beta: float):
    """Full-batch SGD (momentum beta) on a 4-weight linear regression with zero_grad() missing:
    acc += grad; velocity = beta * velocity + acc; w -= lr * velocity. The running sum is an
    integrator: plain SGD swings without damping, momentum on top makes the swings grow."""
    def run(lr: float, epochs: int, _schedule=None):
        x, y, xv, yv = _regression(40, 3, 0, [1.0, -2.0, 0.5], 0.3, n_val=20)
        x, xv, y, yv = np.c_[x, np.ones(40)], np.c_[xv, np.ones(20)], y + 1.0, yv + 1.0
        w, acc, vel, train, val = np.zeros(4), np.zeros(4), np.zeros(4), [], []
        for _ in range(epochs):
            res = x @ w - y
            train.append(float(res @ res / 40))
            val.append(float(np.mean((xv @ w - yv) ** 2)))
            if not (math.isfinite(train[-1]) and math.isfinite(val[-1])):
                break
            acc += 2 * x.T @ res / 40
            vel = beta * vel + acc
            w = w - lr * vel
        return train, val
    return run


ACCUMULATING = [
    pytest.param(0.9, 3e-4, 150, "diverged", id="momentum-growing-swings"),
    # ends 2.8x L0 on a downswing after a 4x peak; 10 T blows up
    pytest.param(0.9, 1e-3, 40, "diverged", id="momentum-ends-on-a-downswing"),
    pytest.param(0.0, 0.01, 100, "oscillating", id="sgd-bounded-swings"),
]


@pytest.mark.parametrize("beta,lr,T,label", ACCUMULATING)
def test_zero_grad_forgotten(beta, lr, T, label):
    (train, val), expected, m = _truth(_accumulating(beta), lr, T)
    assert expected == label, m
    cfg = {"optimizer": {"name": "momentum" if beta else "sgd", "lr": lr, "momentum": beta},
           "train": {"zero_grad": False, "epochs": T}}
    d = diagnose(train, val, config=cfg)
    assert d.symptom == expected
    assert "zero_grad" in d.cause + " ".join(map(str, d.fix))


# failure class: a run that loses the ground it gained (minibatch, lr too high) -----------------

def _clipped_tanh_net(seed: int):
    """Minibatch momentum SGD (batches of 10, shuffled, gradient norm clipped at 1) on a
    16-unit tanh network fitting a smooth 2-D function: at a large lr it falls, then is kicked
    back up to a worse level and stays there, irregularly (clipping keeps it from blowing up)."""
    def run(lr: float, epochs: int, _schedule=None):
        g = np.random.default_rng(seed)
        x, xv = g.uniform(-2, 2, (200, 2)), g.uniform(-2, 2, (100, 2))

        def f(a):
            return np.sin(a[:, 0]) * np.cos(a[:, 1]) + 0.5 * a[:, 0]

        y, yv = f(x) + 0.1 * g.standard_normal(200), f(xv) + 0.1 * g.standard_normal(100)
        params = [g.standard_normal((2, 16)), np.zeros(16), g.standard_normal(16) / 4, np.zeros(1)]
        vel = [np.zeros_like(p) for p in params]
        order, train, val = np.random.default_rng(1), [], []
        for _ in range(epochs):
            total, perm = 0.0, order.permutation(200)
            for i in range(0, 200, 10):
                w1, b1, w2, b2 = params
                idx = perm[i:i + 10]
                h = np.tanh(x[idx] @ w1 + b1)
                res = h @ w2 + b2 - y[idx]
                total += float(res @ res)
                gp = 2 * res / len(idx)
                gh = np.outer(gp, w2) * (1 - h**2)
                grads = [x[idx].T @ gh, gh.sum(0), h.T @ gp, np.array([gp.sum()])]
                norm = math.sqrt(sum(float(np.sum(q * q)) for q in grads))
                grads = [q * min(1.0, 1.0 / (norm + 1e-12)) for q in grads]
                vel = [0.9 * v + q for v, q in zip(vel, grads)]
                params = [p - lr * v for p, v in zip(params, vel)]
            train.append(total / 200)
            w1, b1, w2, b2 = params
            val.append(float(np.mean((np.tanh(xv @ w1 + b1) @ w2 + b2 - yv) ** 2)))
        return train, val
    return run


@pytest.mark.parametrize("seed,lr,T", [
    # falls to 0.47 by epoch 2, back up to 1.2-2.6 for the rest: called stalled before the
    # labeller compared the judged half's level with the best level reached before it
    pytest.param(1, 0.5, 20, id="back-up-and-stays"),
    pytest.param(0, 0.5, 20, id="back-up-with-spikes"),
    pytest.param(3, 0.5, 40, id="back-up-longer"),
])
def test_a_run_that_loses_its_ground_is_oscillating(seed, lr, T):
    (train, val), expected, m = _truth(_clipped_tanh_net(seed), lr, T)
    assert expected == "oscillating", m
    cfg = {"optimizer": {"name": "momentum", "lr": lr}, "train": {"epochs": T}}
    d = diagnose(train, val, config=cfg)
    assert d.symptom == expected, d.evidence
    assert "lower" in d.fix_str().lower() or "optimizer.lr" in d.fix_str()


# failure class 3 again: deep nets on a plateau, an MLP at a tiny lr -----------------------------

def _deep_net(act: str, depth: int, seed: int):
    """Full-batch gradient descent on an MLP (`depth` hidden layers of 16, tanh or sigmoid,
    Glorot-uniform init) fitting a noisy sine wave. A deep sigmoid net learns the mean at once
    and then sits on a plateau (vanishing gradients) that 10x the time or the lr leaves."""
    def f(z):
        return np.tanh(z) if act == "tanh" else 1 / (1 + np.exp(-z))

    def df(a):
        return 1 - a * a if act == "tanh" else a * (1 - a)

    def run(lr: float, epochs: int, _schedule=None):
        g = np.random.default_rng(seed)
        x = g.uniform(-3, 3, (100, 1))
        y = np.sin(x) + 0.1 * g.standard_normal((100, 1))
        xv = g.uniform(-3, 3, (100, 1))
        yv = np.sin(xv) + 0.1 * g.standard_normal((100, 1))
        sizes = [1] + [16] * depth + [1]
        ws = [g.uniform(-1, 1, (a, b)) * math.sqrt(6 / (a + b)) for a, b in zip(sizes, sizes[1:])]
        bs = [np.zeros(b) for b in sizes[1:]]

        def forward(inp):
            acts = [inp]
            for i, (w, b) in enumerate(zip(ws, bs)):
                z = acts[-1] @ w + b
                acts.append(z if i == len(ws) - 1 else f(z))
            return acts

        train, val = [], []
        for _ in range(epochs):
            acts = forward(x)
            res = acts[-1] - y
            train.append(float(np.mean(res**2)))
            val.append(float(np.mean((forward(xv)[-1] - yv) ** 2)))
            d = 2 * res / len(y)
            for i in reversed(range(len(ws))):
                gw, gb = acts[i].T @ d, d.sum(0)
                if i:
                    d = (d @ ws[i].T) * df(acts[i])
                ws[i] -= lr * gw
                bs[i] -= lr * gb
        return train, val
    return run


DEEP = [
    # the drops grow at the end (leaving the plateau): called healthy until a tail that speeds
    # up was followed as it does; the continuations remove 2.5-10x more
    pytest.param(("sigmoid", 4, 0), 0.1, 100, "stalled", id="sigmoid-4-plateau"),
    pytest.param(("sigmoid", 4, 0), 0.3, 100, "stalled", id="sigmoid-4-plateau-lr0.3"),
    pytest.param(("sigmoid", 6, 0), 0.3, 300, "stalled", id="sigmoid-6-plateau-T300"),
    pytest.param(("sigmoid", 6, 0), 0.1, 100, "healthy", id="sigmoid-6-converged"),
    # an MLP under plain SGD at lr 1e-4: a smooth, still-steep descent
    pytest.param(("tanh", 2, 0), 1e-4, 200, "stalled", id="tanh-2-lr1e-4"),
    pytest.param(("tanh", 2, 0), 1e-2, 200, "healthy", id="tanh-2-lr1e-2"),
]


@pytest.mark.parametrize("setup,lr,T,label", DEEP)
def test_deep_and_slow_nets(setup, lr, T, label):
    (train, val), expected, m = _truth(_deep_net(*setup), lr, T)
    assert expected == label, m  # the continuations say so; now the labeller must
    cfg = {"optimizer": {"name": "sgd", "lr": lr}, "train": {"epochs": T}}
    assert diagnose(train, val, config=cfg).symptom == expected
