"""The batched engine against its reference, the sequential loop: run by run, epoch by epoch,
in float64, the same numbers, the same stopping epoch and the same diagnosis."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from sweeps.app import label as _diagnose
from sweeps.config import (SCHEMAS, TRAINING_GROUPS, ConfigError, Dtype, Init, ModelName,
                           OptimizerName, Schedule, config_dir, register_configs)
from sweeps.engine import HANDLED, can_batch, group_key, train_batch, unsupported
from sweeps.loop import train

F64 = ("train.dtype=float64", "train.device=cpu")
GROUPS = {g.name: sorted(p.stem for p in g.glob("*.yaml"))
          for g in Path(config_dir()).iterdir() if g.is_dir()}


@pytest.fixture(scope="module")
def compose_many():
    """Compose many configs under one Hydra initialisation (as ``make_cfg``, but faster)."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        yield lambda grid: [compose("config", overrides=list(ov)) for ov in grid]
    GlobalHydra.instance().clear()


def assert_same_run(got, ref, label=""):
    """Same length, stop reason and non-finite pattern; finite values to 1e-5 relative (with
    an absolute floor at 1e-9 of the metric's own scale, for gradients that are ~0)."""
    assert (got.epochs_run, got.stop_reason) == (ref.epochs_run, ref.stop_reason), label
    assert set(got.metrics) == set(ref.metrics), label
    for key, want in ref.metrics.items():
        a, b = np.asarray(got[key]), np.asarray(want)
        fin = np.isfinite(b)
        np.testing.assert_array_equal(np.isfinite(a), fin, err_msg=f"{label} {key}")
        scale = np.max(np.abs(b[fin]), initial=0.0)
        np.testing.assert_allclose(a[fin], b[fin], rtol=1e-5, atol=1e-9 * scale,
                                   err_msg=f"{label} {key}")


def check_against_loop(cfgs, grid):
    batched = train_batch(cfgs)
    for cfg, ov, got in zip(cfgs, grid, batched):
        ref = train(cfg)
        assert_same_run(got, ref, " ".join(ov))
        a, b = _diagnose(cfg, got), _diagnose(cfg, ref)
        assert (a.symptom, a.cause, a.fix) == (b.symptom, b.cause, b.fix), " ".join(ov)
    return batched


@pytest.mark.parametrize("model", ["linear", "poly"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "rmsprop"])
def test_matches_loop_for_every_optimizer_and_zero_grad(compose_many, model, optimizer):
    # lr 0.01 learns, 0.3 is fast or bouncy, 1000 blows up (sgd) or thrashes (adaptive ones)
    grid = [(f"model={model}", f"optimizer={optimizer}", f"optimizer.lr={lr}",
             f"train.zero_grad={zg}", "data=few", "data.noise=0.5", "train.epochs=80", *F64)
            for lr, zg in itertools.product([0.01, 0.3, 1000.0], [True, False])]
    histories = check_against_loop(compose_many(grid), grid)
    assert len({group_key(c) for c in compose_many(grid[:2])}) == 1  # zero_grad shares a program
    if optimizer in ("sgd", "momentum"):
        assert {h.stop_reason for h in histories[4:]} == {"non_finite"}


def test_matches_loop_with_every_other_option(compose_many):
    grid = [
        ("optimizer=sgd", "optimizer.lr=0.1", "optimizer.weight_decay=0.05",
         "optimizer.momentum=0.5"),
        ("optimizer=sgd", "optimizer.lr=0.5", "train.clip_grad_norm=0.1", "train.zero_grad=false"),
        ("optimizer=momentum", "optimizer.lr=0.05", "train.lr_schedule=step",
         "train.lr_step_size=10"),
        ("optimizer=adam", "optimizer.lr=0.1", "optimizer.weight_decay=0.01", "optimizer.beta1=0.5",
         "train.lr_schedule=cosine", "train.clip_grad_norm=0.5"),
        ("optimizer=adam", "optimizer.lr=0.05", "optimizer.beta2=0.9", "optimizer.eps=1e-3",
         "train.lr_schedule=exponential", "train.lr_gamma=0.97"),
        ("optimizer=rmsprop", "optimizer.lr=0.01", "optimizer.momentum=0.9", "optimizer.alpha=0.9"),
        ("optimizer=rmsprop", "optimizer.lr=0.01", "train.zero_grad=false",
         "optimizer.weight_decay=0.1"),
        ("optimizer=sgd", "optimizer.lr=0.5", "train.early_stop=true", "train.patience=3",
         "data=few", "model=poly", "data.noise=1.0"),
        ("optimizer=adam", "optimizer.lr=0.3", "train.early_stop=true", "train.patience=5",
         "data=few", "model=poly", "data.noise=2.0"),
        ("optimizer=sgd", "optimizer.lr=0.1", "model.init=default", "train.seed=3",
         "data.normalize=true"),
        ("optimizer=adam", "optimizer.lr=0.01", "model=mlp", "data=few", "model.hidden=8"),
        ("optimizer=rmsprop", "optimizer.lr=0.01", "model=mlp", "data=few", "model.hidden=8",
         "train.zero_grad=false", "optimizer.momentum=0.5"),
    ]
    grid = [(*ov, "train.epochs=60", *F64) for ov in grid]
    histories = check_against_loop(compose_many(grid), grid)
    assert "early_stop" in {h.stop_reason for h in histories}


def test_a_diverging_run_leaves_its_neighbours_alone(compose_many):
    grid = [("optimizer.lr=0.1", "data.noise=0.5"), ("optimizer.lr=50", "train.zero_grad=false"),
            ("optimizer.lr=0.3", "train.seed=1"), ("optimizer.lr=0.2",)]
    cfgs = compose_many([(*ov, "train.epochs=120", *F64) for ov in grid])
    with_nan = train_batch(cfgs[:3])
    assert with_nan[1].stop_reason == "non_finite" and with_nan[1].epochs_run < 120
    last = with_nan[1].metrics
    assert not (math.isfinite(last["train_loss"][-1]) and math.isfinite(last["val_loss"][-1]))
    # Same batch shape with a healthy run in the middle: the neighbours' numbers are identical.
    without = train_batch([cfgs[0], cfgs[3], cfgs[2]])
    for i in (0, 2):
        assert with_nan[i].metrics == without[i].metrics
        assert with_nan[i].stop_reason == without[i].stop_reason == "completed"
    # And alone they match to rounding (reductions over a batch of 1 may round differently).
    for cfg, got in zip(cfgs, with_nan):
        alone = train_batch([cfg])[0]
        assert_same_run(got, alone)


def test_global_rng_and_order_are_kept(compose_many):
    cfgs = compose_many([("model=poly", "optimizer=adam", *F64), ("optimizer=sgd", *F64),
                         ("model=poly", "optimizer=sgd", "train.epochs=5", *F64)])
    torch.manual_seed(123)
    state = torch.get_rng_state()
    hs = train_batch(cfgs)
    assert torch.equal(torch.get_rng_state(), state)
    assert [h.epochs_run for h in hs] == [200, 200, 5]
    assert "w" in hs[1].metrics and "w" not in hs[0].metrics


@pytest.mark.parametrize("a, b, same", [
    (("optimizer.lr=0.1",), ("optimizer.lr=1.0", "train.zero_grad=false", "data.noise=2"), True),
    (("optimizer=sgd",), ("optimizer=momentum", "train.lr_schedule=cosine"), True),
    (("train.clip_grad_norm=1",), ("train.early_stop=true", "train.seed=4"), True),
    (("optimizer=sgd",), ("optimizer=adam",), False),
    (("model=linear",), ("model=poly",), False),
    (("model=poly",), ("model=poly", "model.degree=3"), False),
    (("train.epochs=10",), ("train.epochs=11",), False),
    (("train.dtype=float32",), ("train.dtype=float64",), False),
    (("data=line",), ("data=few",), False),
])
def test_group_key(compose_many, a, b, same):
    ca, cb = compose_many([a, b])
    assert (group_key(ca) == group_key(cb)) is same


def _patched(cfg, patch):
    """The resolved container of ``cfg`` with dotted keys set to values no schema admits."""
    container = OmegaConf.to_container(cfg, resolve=True)
    for key, value in patch.items():
        group, name = key.split(".")
        container[group][name] = value
    return container


@pytest.mark.parametrize("overrides, patch, why", [
    (("optimizer.lr=-1",), {}, "optimizer.lr"),
    # a name outside train.lr_schedule's enum fails at compose time; only a container holds it
    ((), {"train.lr_schedule": "warmup"}, "train.lr_schedule"),
    # a field a schema gained but the engine does not implement: the loop trains it
    ((), {"train.grad_accum": 4}, "train.grad_accum: not implemented by the engine"),
    pytest.param(("train.device=cuda",), {}, "CUDA",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here")),
])
def test_unsupported_configs_say_why(compose_many, overrides, patch, why):
    (cfg,) = compose_many([overrides])
    cfg = _patched(cfg, patch) if patch else cfg
    assert not can_batch(cfg) and why in unsupported(cfg)
    with pytest.raises(ConfigError, match=why):
        train_batch([cfg])


def _schema_fields():
    return {g: [f.name for f in dataclasses.fields(SCHEMAS[g])] for g in TRAINING_GROUPS}


def test_every_schema_field_is_handled_or_sends_the_job_to_the_loop(compose_many):
    (cfg,) = compose_many([()])
    why = unsupported(cfg) or ""
    for group, names in _schema_fields().items():
        for name in names:
            assert name in HANDLED[group] or f"{group}.{name}" in why, \
                f"{group}.{name}: neither implemented by the engine nor sent to the loop"
    # nor does the engine claim a field no schema has (a rename would leave it behind)
    assert set(HANDLED) == set(TRAINING_GROUPS)
    for group, names in HANDLED.items():
        assert set(names) <= set(_schema_fields()[group]), group


def test_a_field_left_out_of_handled_sends_the_job_to_the_loop(compose_many, monkeypatch):
    monkeypatch.setitem(HANDLED, "train", tuple(n for n in HANDLED["train"] if n != "patience"))
    (cfg,) = compose_many([()])
    assert unsupported(cfg) == "train.patience: not implemented by the engine"
    assert train(cfg).stop_reason == "completed"  # the loop still trains it


def test_every_config_option_and_allowed_name_runs_on_the_engine(compose_many):
    # so a field the engine leaves out of HANDLED cannot quietly send every sweep to the loop
    grid = [(f"{group}={option}", "train.epochs=2") for group, options in GROUPS.items()
            if group in TRAINING_GROUPS for option in options]
    grid += [(f"{key}={member.value}", "train.epochs=2", "model.degree=2")
             for key, names in (("optimizer.name", OptimizerName), ("model.name", ModelName),
                                ("model.init", Init), ("train.lr_schedule", Schedule),
                                ("train.dtype", Dtype)) for member in names]
    for ov, cfg in zip(grid, compose_many(grid)):
        assert unsupported(cfg) is None, ov
