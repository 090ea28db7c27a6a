"""The loop against the explainer's worked example and an independent numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sweeps.data import make_data
from sweeps.config import lr_at
from sweeps.loop import train


def _numpy_gd(x, y, lr, epochs, accumulate):
    """Full-batch gradient descent on MSE for y ~ w x + b, written out by hand."""
    w = b = 0.0
    gw_acc = gb_acc = 0.0
    ws, bs, losses = [], [], []
    for _ in range(epochs):
        r = w * x + b - y
        losses.append(np.mean(r**2))
        gw, gb = 2 * np.mean(r * x), 2 * np.mean(r)
        if accumulate:
            gw_acc, gb_acc = gw_acc + gw, gb_acc + gb
        else:
            gw_acc, gb_acc = gw, gb
        w, b = w - lr * gw_acc, b - lr * gb_acc
        ws.append(w)
        bs.append(b)
    return np.array(losses), np.array(ws), np.array(bs)


def test_worked_example_first_gradients_are_negative(make_cfg):
    cfg = make_cfg()
    data = make_data(cfg.data, cfg.train.seed)
    model = torch.nn.Linear(1, 1)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    loss = torch.nn.functional.mse_loss(model(data.x_train), data.y_train)
    loss.backward()
    assert model.weight.grad.item() < 0 and model.bias.grad.item() < 0


def test_worked_example_converges_fast_then_slowly(make_cfg):
    h = train(make_cfg())  # defaults: Linear(1,1) from 0, SGD lr 0.03, 200 epochs, noise 0
    loss = np.array(h["train_loss"])
    assert h.epochs_run == 200 and h.stop_reason == "completed"
    assert np.all(np.diff(loss) < 0)
    early, late = loss[0] - loss[20], loss[100] - loss[120]
    assert early > 10 * late > 0
    assert abs(h["w"][-1] - 0.8) < 0.05 and abs(h["b"][-1] - 0.5) < 0.05


@pytest.mark.parametrize("zero_grad", [True, False])
def test_loop_matches_hand_written_gradient_descent(make_cfg, zero_grad):
    cfg = make_cfg("train.dtype=float64", "train.epochs=60", "data.noise=0.3", f"train.zero_grad={zero_grad}")
    h = train(cfg)
    data = make_data(cfg.data, cfg.train.seed, torch.float64)
    x, y = data.x_train.numpy().ravel(), data.y_train.numpy().ravel()
    losses, ws, bs = _numpy_gd(x, y, 0.03, 60, accumulate=not zero_grad)
    np.testing.assert_allclose(h["train_loss"], losses, rtol=1e-9)
    np.testing.assert_allclose(h["w"], ws, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h["b"], bs, rtol=1e-9, atol=1e-12)


def test_grad_accumulates_without_zero_grad():
    """What train.zero_grad=false relies on: .grad after two backward passes is their sum."""
    w = torch.zeros(1, requires_grad=True)
    x = torch.tensor([1.0, 2.0])
    (w * x).sum().backward()
    first = w.grad.clone()
    (3 * w * x).sum().backward()
    assert torch.equal(w.grad, first + 3 * first)


def test_without_zero_grad_the_run_differs_and_keeps_swinging(make_cfg):
    on = train(make_cfg("train.zero_grad=true"))
    off = train(make_cfg("train.zero_grad=false"))
    assert on["train_loss"][0] == off["train_loss"][0]
    assert on["train_loss"][1] == off["train_loss"][1]  # the first step is the same
    assert on["train_loss"][2] != off["train_loss"][2]
    assert off["train_loss"][-1] > 100 * on["train_loss"][-1]


def test_same_config_same_numbers_bitwise(make_cfg):
    cfg = make_cfg("model=mlp", "data.noise=0.5", "optimizer=adam", "train.epochs=30")
    a, b = train(cfg), train(cfg)
    assert a.metrics["train_loss"] == b.metrics["train_loss"]
    assert a.metrics["val_loss"] == b.metrics["val_loss"]


def test_non_finite_loss_stops_early_and_is_recorded(make_cfg):
    h = train(make_cfg("optimizer.lr=5.0"))
    assert h.stop_reason == "non_finite"
    assert h.epochs_run < 200
    last = h["train_loss"][-1], h["val_loss"][-1]
    assert not all(np.isfinite(last))
    assert all(np.isfinite(h["train_loss"][:-1]))
    assert all(len(v) == h.epochs_run for v in h.metrics.values())


def test_gradient_clipping_bounds_each_step(make_cfg):
    h = train(make_cfg("optimizer.lr=1.5", "train.clip_grad_norm=0.1", "train.epochs=50"))
    w, b = np.array([0.0] + h["w"]), np.array([0.0] + h["b"])
    steps = np.hypot(np.diff(w), np.diff(b))
    assert np.all(steps <= 1.5 * 0.1 + 1e-6)


def test_early_stop_ends_when_validation_stops_improving(make_cfg):
    h = train(make_cfg("model=poly", "data=few", "data.noise=2.0", "optimizer=adam",
                       "optimizer.lr=0.1", "train.early_stop=true", "train.patience=10"))
    assert h.stop_reason == "early_stop"
    best = int(np.argmin(h["val_loss"]))
    assert h.epochs_run == best + 10 + 1


@pytest.mark.parametrize("schedule, epoch, expected", [
    ("constant", 150, 0.1),
    ("step", 49, 0.1), ("step", 50, 0.01), ("step", 120, 0.001),
    ("exponential", 2, 0.1 * 0.9**2),
    ("cosine", 0, 0.1), ("cosine", 100, 0.05), ("cosine", 200, 0.0),
    # 200 epochs: 20 of warm-up (0.1/20 per epoch), then a cosine over the other 180
    ("warmup_cosine", 0, 0.005), ("warmup_cosine", 19, 0.1), ("warmup_cosine", 20, 0.1),
    ("warmup_cosine", 110, 0.05), ("warmup_cosine", 200, 0.0),
])
def test_lr_schedules(schedule, epoch, expected):
    from types import SimpleNamespace

    gamma = 0.9 if schedule == "exponential" else 0.1
    train_cfg = SimpleNamespace(lr_schedule=schedule, lr_gamma=gamma, lr_step_size=50, epochs=200)
    assert lr_at(epoch, 0.1, train_cfg) == pytest.approx(expected, abs=1e-12)


def test_normalize_standardises_training_inputs(make_cfg):
    cfg = make_cfg("data.normalize=true", "data.x_low=5", "data.x_high=9")
    d = make_data(cfg.data, 0)
    assert abs(d.x_train.mean().item()) < 1e-5
    assert abs(d.x_train.std().item() - 1) < 1e-5
