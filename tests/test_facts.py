"""Each fact once: the allowed names are Enums in the config schemas, yet every text made from a
config (MLflow params, the config hash, config.yaml, run names) is what it was when they were
plain strings. The literals below were produced by the code before the Enums (commit b8d43c2)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import get_type_hints

import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from sweeps import app, record
from sweeps.checks import allowed
from sweeps.config import (SCHEMAS, Dtype, Init, ModelName, Names, OptimizerName, Schedule,
                           config_hash, dump_yaml, flatten, n_params)
from sweeps.engine import train_batch
from sweeps.loop import make_optimizer, train
from sweeps.model import build_model

NAME_KEYS = ("optimizer.name", "model.name", "model.init", "train.dtype", "train.lr_schedule")

# overrides -> (config hash, run name, the Names params)
PINNED = {
    (): ("5ae7188c2a9843b5", "sgd lr=0.03 noise=0 zero_grad=on",
         ("sgd", "linear", "zeros", "float32", "constant")),
    ("optimizer=adam", "model=poly", "model.degree=5", "train.lr_schedule=cosine",
     "train.dtype=float64"):
        ("ec1aefa28cf12468",
         "adam lr=0.03 noise=0 zero_grad=on model=poly degree=5 lr_schedule=cosine dtype=float64",
         ("adam", "poly", "zeros", "float64", "cosine")),
    ("optimizer=momentum", "model=mlp", "model.init=default", "data=few", "train.lr_schedule=step"):
        ("90825f7cafc3e1ec",
         "momentum lr=0.03 noise=0.5 zero_grad=on model=mlp init=default data=few lr_schedule=step",
         ("momentum", "mlp", "default", "float32", "step")),
    ("optimizer=rmsprop", "train.lr_schedule=exponential", "train.clip_grad_norm=1.0",
     "data.noise=0.5"):
        ("b73a13183a235b6f",
         "rmsprop lr=0.03 noise=0.5 zero_grad=on lr_schedule=exponential clip_grad_norm=1.0",
         ("rmsprop", "linear", "zeros", "float32", "exponential")),
}


@pytest.mark.parametrize("overrides", list(PINNED))
def test_params_hash_and_run_name_are_as_before(make_cfg, overrides):
    want_hash, want_name, want_names = PINNED[overrides]
    cfg = make_cfg(*overrides)
    container = OmegaConf.to_container(cfg, resolve=True)  # as app and the launcher make it
    rec = record.begin(container, list(overrides), {}, host="h", pid=1)
    tags, params = rec.tags, rec.params
    assert config_hash(cfg) == config_hash(container) == tags["sweeps.config_hash"] == want_hash
    assert record.run_name(container, list(overrides)) == want_name
    assert tuple(params[k] for k in NAME_KEYS) == want_names
    assert all(type(v) is str for v in params.values())
    flat = flatten(container)
    assert tuple(type(flat[k]) for k in NAME_KEYS) == (str,) * 5  # plain strings, not members


DEFAULT_PARAMS = {
    "data.intercept": "0.5", "data.n_train": "80", "data.n_val": "20", "data.name": "line",
    "data.noise": "0.0", "data.normalize": "False", "data.seed": "None", "data.slope": "0.8",
    "data.x_high": "1.0", "data.x_low": "-1.0", "model.degree": "1", "model.hidden": "32",
    "model.init": "zeros", "model.layers": "2", "model.name": "linear", "optimizer.alpha": "0.99",
    "optimizer.beta1": "0.9", "optimizer.beta2": "0.999", "optimizer.eps": "1e-08",
    "optimizer.lr": "0.03", "optimizer.momentum": "0.0", "optimizer.name": "sgd",
    "optimizer.weight_decay": "0.0", "paths.output_dir": "outputs", "sweep.name": "adhoc",
    "sweep.plots": "True", "sweep.resume": "True", "sweep.wait_for_plots": "False",
    "tracking.enabled": "True",
    "tracking.experiment": "None", "tracking.flush_every_s": "5.0", "train.clip_grad_norm": "None",
    "train.device": "auto", "train.dtype": "float32", "train.early_stop": "False",
    "train.epochs": "200", "train.lr_gamma": "0.1", "train.lr_schedule": "constant",
    "train.lr_step_size": "50", "train.patience": "20", "train.seed": "0",
    "train.zero_grad": "True",
}

DEFAULT_YAML = """\
data:
  name: line
  slope: 0.8
  intercept: 0.5
  noise: 0.0
  n_train: 80
  n_val: 20
  x_low: -1.0
  x_high: 1.0
  normalize: false
  seed: null
model:
  name: linear
  degree: 1
  hidden: 32
  layers: 2
  init: zeros
optimizer:
  name: sgd
  lr: 0.03
  momentum: 0.0
  weight_decay: 0.0
  beta1: 0.9
  beta2: 0.999
  alpha: 0.99
  eps: 1.0e-08
train:
  epochs: 200
  seed: 0
  device: auto
  dtype: float32
  zero_grad: true
  clip_grad_norm: null
  lr_schedule: constant
  lr_gamma: 0.1
  lr_step_size: 50
  early_stop: false
  patience: 20
tracking:
  uri: null
  experiment: null
  enabled: true
  flush_every_s: 5.0
paths:
  output_dir: outputs
sweep:
  name: adhoc
  resume: true
  plots: true
  wait_for_plots: false
"""


def test_default_config_params_and_yaml_are_as_before(make_cfg):
    cfg = make_cfg()
    container = OmegaConf.to_container(cfg, resolve=True)
    assert record.begin(container, [], {}, host="h", pid=1).params == DEFAULT_PARAMS
    history = train(cfg)
    done = record.complete(record.begin(container, [], {}, host="h", pid=1), container, history,
                           app.label(container, history), {})
    assert done.texts["config.yaml"] == DEFAULT_YAML
    assert dump_yaml(container) == OmegaConf.to_yaml(cfg, resolve=True) == DEFAULT_YAML


# What the real CLI stored for these sweeps before the Enums: run name -> (hash, Names params).
SWEEP = ("-m", "optimizer=sgd,momentum,adam,rmsprop", "train.lr_schedule=constant,cosine",
         "model=poly", "train.epochs=3")
SWEEP_RUNS = {
    f"{opt} lr=0.03 noise=0 zero_grad=on lr_schedule={sched} model=poly epochs=3":
        (h, (opt, "poly", "zeros", "float32", sched))
    for opt, sched, h in [
        ("sgd", "constant", "ec339b4b81523eee"), ("sgd", "cosine", "b044100ab8970270"),
        ("momentum", "constant", "f78eed06ee5ef811"), ("momentum", "cosine", "0207c06b9470e07c"),
        ("adam", "constant", "4dd27b1b7f127ae9"), ("adam", "cosine", "b6f6a2591695a2e3"),
        ("rmsprop", "constant", "dfa910525c6c20de"), ("rmsprop", "cosine", "91100e7581e97e09"),
    ]
}
SINGLE = ("train.epochs=3", "model.init=default", "train.dtype=float64")
SINGLE_NAME = "sgd lr=0.03 noise=0 zero_grad=on epochs=3 init=default dtype=float64"
SINGLE_HASH = "e74ab6a16e3e15d1"
# the single run's params and config.yaml: the defaults' with these differences (OUT = outputs dir)
SINGLE_CHANGES = {"model.init": "default", "train.dtype": "float64", "train.epochs": "3",
                  "sweep.plots": "False", "paths.output_dir": "OUT", "data": "line",
                  "model": "linear", "optimizer": "sgd", "tracking": "default", "train": "default",
                  # since the seventh session: the variance of the line's 80 training targets,
                  # the loss of predicting their mean (test_baseline.py checks it against a
                  # net that collapsed onto the mean)
                  "data.baseline_loss": "0.195862"}
SINGLE_YAML = DEFAULT_YAML.replace("  init: zeros", "  init: default") \
    .replace("  dtype: float32", "  dtype: float64").replace("  epochs: 200", "  epochs: 3") \
    .replace("  plots: true", "  plots: false") \
    .replace("  output_dir: outputs", "  output_dir: OUT")


def test_the_cli_stores_what_it_stored_before(cli):
    cli(*SWEEP)  # the vectorised launcher: batched, recorded in bulk
    cli(*SINGLE)  # one run, recorded through sweeps.app
    client = MlflowClient(cli.uri)
    runs = client.search_runs([client.get_experiment_by_name("adhoc").experiment_id])
    got, single = {}, None
    for r in runs:
        if r.data.tags["sweeps.role"] == "child":
            got[r.info.run_name] = (r.data.tags["sweeps.config_hash"],
                                    tuple(r.data.params[k] for k in NAME_KEYS))
        elif r.data.tags["sweeps.role"] == "single":
            single = r
    assert got == SWEEP_RUNS
    out = str(cli.store.parent)
    assert single.info.run_name == SINGLE_NAME
    assert single.data.tags["sweeps.config_hash"] == SINGLE_HASH
    params = {k: v.replace(out, "OUT") for k, v in single.data.params.items()}
    assert params == {**DEFAULT_PARAMS, **SINGLE_CHANGES}
    path = Path(client.download_artifacts(single.info.run_id, "config.yaml"))
    assert path.read_text().replace(out, "OUT") == SINGLE_YAML


# --- the Names themselves ------------------------------------------------------------------------


def test_the_schemas_name_fields_and_their_allowed_names():
    typed = {f"{g}.{f}": t for g, schema in SCHEMAS.items()
             for f, t in get_type_hints(schema).items()
             if isinstance(t, type) and issubclass(t, Names)}
    assert typed == {"optimizer.name": OptimizerName, "model.name": ModelName, "model.init": Init,
                     "train.dtype": Dtype, "train.lr_schedule": Schedule}
    assert [allowed(k) for k in NAME_KEYS] == [
        "one of ['sgd', 'momentum', 'adam', 'rmsprop']", "one of ['linear', 'poly', 'mlp']",
        "one of ['zeros', 'default']", "one of ['float32', 'float64']",
        "one of ['constant', 'step', 'cosine', 'exponential', 'warmup_cosine']"]


@pytest.mark.parametrize("member", [m for e in (OptimizerName, ModelName, Init, Dtype, Schedule)
                                    for m in e])
def test_a_member_reads_as_its_plain_string(member):
    text = member.value
    assert member.name == text  # OmegaConf converts by name; strings compare by value
    assert member == text and hash(member) == hash(text) and {text: 1}[member] == 1
    assert (str(member), f"{member}", f"{member:>3}", repr(member)) == \
        (text, text, f"{text:>3}", repr(text))
    assert json.dumps({"k": member}) == json.dumps({"k": text})
    assert dump_yaml({"k": member, "again": member}) == \
        yaml.safe_dump({"k": text, "again": text}, sort_keys=False)
    # (no YAML anchors either, though the same member object appears twice)
    assert pickle.loads(pickle.dumps(member)) is member  # jobs sent to other processes


# --- parameter counts and the momentum default ---------------------------------------------------


@pytest.mark.parametrize("overrides, count", [
    (("model=linear",), 2),  # w, b
    (("model=poly",), 10),  # degree 9: 9 weights + bias
    (("model=poly", "model.degree=3"), 4),
    (("model=mlp",), 1153),  # 1->32 (64), 32->32 (1056), 32->1 (33)
    (("model=mlp", "model.hidden=8", "model.layers=1"), 25),  # 1->8 (16), 8->1 (9)
    (("model=mlp", "model.hidden=4", "model.layers=3"), 53),  # 8 + 20 + 20 + 5
])
def test_parameter_count_without_building_the_model(make_cfg, overrides, count):
    model = make_cfg(*overrides).model
    assert n_params(model) == count
    assert sum(p.numel() for p in build_model(model).parameters()) == count


@pytest.mark.parametrize("overrides, momentum", [
    (("optimizer=sgd",), 0.0),
    (("optimizer=momentum",), 0.9),  # conf/optimizer/momentum.yaml
    (("optimizer=momentum", "optimizer.momentum=0"), 0.9),  # left at 0: heavy-ball 0.9 still
    (("optimizer=momentum", "optimizer.momentum=0.5"), 0.5),
    (("optimizer=rmsprop", "optimizer.momentum=0.3"), 0.3),
])
def test_momentum_the_optimizer_trains_with(make_cfg, overrides, momentum):
    opt = make_optimizer([torch.zeros(1, requires_grad=True)], make_cfg(*overrides).optimizer)
    assert opt.param_groups[0]["momentum"] == momentum


def test_engine_and_loop_agree_on_momentum_left_at_zero(make_cfg):
    cfg = make_cfg("optimizer=momentum", "optimizer.momentum=0", "optimizer.lr=0.01",
                   "train.epochs=30", "train.dtype=float64", "train.device=cpu")
    (batched,) = train_batch([cfg])
    ref = train(cfg)
    sgd = train(make_cfg("optimizer=sgd", "optimizer.lr=0.01", "train.epochs=30",
                         "train.dtype=float64", "train.device=cpu"))
    torch.testing.assert_close(batched["train_loss"], ref["train_loss"], rtol=1e-9, atol=0)
    assert ref["train_loss"][-1] != sgd["train_loss"][-1]  # momentum did act
