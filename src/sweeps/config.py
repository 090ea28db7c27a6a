"""Typed config schemas (one dataclass per Hydra config group, the allowed names as Enums), the
facts a config implies (parameter count, momentum) and a run's identity (hash, flat params).
YAML under conf/ holds the values; this module holds the types; sweeps.checks the value checks
that types alone cannot express.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping, Optional

import yaml
from omegaconf import MISSING, DictConfig, OmegaConf

from sweeps.config_error import ConfigError  # noqa: F401 - raised here, imported from here too


class Names(str, Enum):
    """Base of the allowed names. OmegaConf converts a YAML or override string to a member by
    its name (an unknown name fails at compose time); a member reads as its plain string in
    ``str``, f-strings, ``repr``, JSON, YAML and MLflow params, as when these fields were str."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return str.__repr__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)

    @classmethod
    def values(cls) -> list[str]:
        return [m.value for m in cls]


class OptimizerName(Names):
    sgd = "sgd"  # plain SGD; optimizer.momentum applies as set
    momentum = "momentum"  # SGD with heavy-ball momentum: optimizer.momentum, DEFAULT_MOMENTUM if 0
    adam = "adam"
    rmsprop = "rmsprop"


class ModelName(Names):
    linear = "linear"  # nn.Linear(1, 1)
    poly = "poly"  # features x..x^degree into one nn.Linear
    mlp = "mlp"  # `layers` tanh layers of width `hidden`, then nn.Linear(hidden, 1)


class Init(Names):
    zeros = "zeros"  # every parameter starts at 0 (the worked example: w = b = 0)
    default = "default"  # torch's own nn.Linear init


class Schedule(Names):
    constant = "constant"
    step = "step"  # lr * lr_gamma ** (epoch // lr_step_size)
    cosine = "cosine"  # lr * (1 + cos(pi * epoch / epochs)) / 2
    exponential = "exponential"  # lr * lr_gamma ** epoch
    warmup_cosine = "warmup_cosine"  # linear warm-up over the first WARMUP_SHARE, then cosine


class Dtype(Names):
    float32 = "float32"
    float64 = "float64"


# optimizer=momentum with optimizer.momentum left at 0: the heavy-ball coefficient it uses.
DEFAULT_MOMENTUM = 0.9
WARMUP_SHARE = 0.1  # warmup_cosine: the share of the epochs whose lr ramps up linearly


@dataclass
class DataConfig:
    name: str = "line"  # label of the data set, for run names and the UI
    slope: float = 0.8  # true w of the line y = slope * x + intercept
    intercept: float = 0.5  # true b of the line
    noise: float = 0.0  # standard deviation of Gaussian label noise (target units), >= 0
    n_train: int = 80  # training points (one full batch per epoch)
    n_val: int = 20  # held-out validation points, drawn from the same distribution
    x_low: float = -1.0  # inputs are uniform on [x_low, x_high]
    x_high: float = 1.0
    normalize: bool = False  # standardise x with the training mean/std (a fix for stalled runs)
    seed: Optional[int] = None  # data seed; null -> train.seed


@dataclass
class ModelConfig:
    name: ModelName = ModelName.linear  # which model (see ModelName)
    degree: int = 1  # poly: highest power of x fed to the linear layer
    hidden: int = 32  # mlp: width of each hidden layer
    layers: int = 2  # mlp: number of hidden layers
    init: Init = Init.zeros  # how its parameters start (see Init)


@dataclass
class OptimizerConfig:
    name: OptimizerName = OptimizerName.sgd  # which update rule (see OptimizerName)
    lr: float = 0.03  # learning rate (step size), > 0
    momentum: float = 0.0  # momentum coefficient (sgd/momentum/rmsprop), in [0, 1)
    weight_decay: float = 0.0  # L2 penalty added by the optimizer, >= 0
    beta1: float = 0.9  # adam: first-moment decay
    beta2: float = 0.999  # adam: second-moment decay
    alpha: float = 0.99  # rmsprop: squared-gradient decay
    eps: float = 1.0e-8  # adam/rmsprop: denominator guard


@dataclass
class TrainConfig:
    epochs: int = 200  # full-batch passes over the training data, >= 1
    seed: int = 0  # seeds data, init and torch; same seed -> same numbers on CPU
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: Dtype = Dtype.float32  # floating dtype of data, parameters and arithmetic
    zero_grad: bool = True  # call optimizer.zero_grad() each epoch; false lets gradients accumulate
    clip_grad_norm: Optional[float] = None  # clip the total gradient norm to this value; null = off
    lr_schedule: Schedule = Schedule.constant  # lr as a function of the epoch (see Schedule)
    lr_gamma: float = 0.1  # step/exponential: decay factor (per step_size epochs / per epoch)
    lr_step_size: int = 50  # step: epochs between decays
    early_stop: bool = False  # stop when val_loss has not improved for `patience` epochs
    patience: int = 20  # early stopping patience, in epochs


@dataclass
class TrackingConfig:
    uri: Optional[str] = None  # MLflow tracking URI; null -> $MLFLOW_TRACKING_URI or sqlite under paths.output_dir
    experiment: Optional[str] = None  # MLflow experiment; null -> sweep.name
    enabled: bool = True  # false: train and print, log nothing
    flush_every_s: float = 5.0  # seconds between metric flushes while a run trains


@dataclass
class SweepConfig:
    name: str = "adhoc"  # sweep preset name; also the default MLflow experiment
    resume: bool = True  # skip grid points that already have a FINISHED run in the experiment
    plots: bool = True  # at the end, draw the comparison plots and log them on the parent run
    wait_for_plots: bool = False  # the command returns once they are written (default: a helper
    # process finishes them in the background; a re-run or sweeps-analyze waits for it)


@dataclass
class PathsConfig:
    output_dir: str = "outputs"  # root of everything generated: store, artifacts, job dirs


@dataclass
class Config:
    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    train: TrainConfig = MISSING
    tracking: TrackingConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)


# The schema of each config group, by group name.
SCHEMAS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "optimizer": OptimizerConfig,
                            "train": TrainConfig, "tracking": TrackingConfig}


def register_configs() -> None:
    """Register the schemas so each group's YAML files extend (and are checked against) them."""
    from hydra.core.config_store import ConfigStore  # Hydra itself: not for `sweeps-analyze`

    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    # At the top level, not in their groups: `sweeps --help` lists a group's options, and a
    # schema is not one to pick. Each group's YAML files extend theirs as /<group>_schema.
    for group, schema in SCHEMAS.items():
        cs.store(name=f"{group}_schema", node=schema)


# --- what a config trains ------------------------------------------------------------------


def linear_layers(model: Any) -> list[tuple[int, int]]:
    """(inputs, outputs) of each nn.Linear of the model a ``model`` config node describes,
    from input to output: what sweeps.model builds (tanh between an mlp's layers)."""
    if model.name == ModelName.linear:
        return [(1, 1)]
    if model.name == ModelName.poly:
        return [(model.degree, 1)]
    if model.name == ModelName.mlp:
        widths = [1] + [model.hidden] * model.layers + [1]
        return list(zip(widths[:-1], widths[1:]))
    raise ConfigError(f"model.name={model.name!r}: must be one of {ModelName.values()}")


def lr_at(epoch: int, lr: float, train: Any) -> float:
    """Learning rate of ``epoch`` under ``train.lr_schedule`` (a pure function of the epoch and
    the ``train`` node's lr_schedule, lr_gamma, lr_step_size and epochs)."""
    kind = train.lr_schedule
    if kind == Schedule.constant:
        return lr
    if kind == Schedule.step:
        return lr * train.lr_gamma ** (epoch // train.lr_step_size)
    if kind == Schedule.exponential:
        return lr * train.lr_gamma**epoch
    if kind == Schedule.cosine:
        return 0.5 * lr * (1 + math.cos(math.pi * epoch / train.epochs))
    if kind == Schedule.warmup_cosine:
        w = max(1, int(WARMUP_SHARE * train.epochs))
        if epoch < w:
            return lr * (epoch + 1) / w
        return 0.5 * lr * (1 + math.cos(math.pi * (epoch - w) / max(train.epochs - w, 1)))
    raise ConfigError(f"train.lr_schedule={kind!r}: must be one of {Schedule.values()}")


def n_params(model: Any) -> int:
    """Trainable parameters (weights and biases) of the model a ``model`` config node describes."""
    return sum(n_in * n_out + n_out for n_in, n_out in linear_layers(model))


def momentum_of(optimizer: Any) -> float:
    """The momentum coefficient an ``optimizer`` config node trains with: optimizer.momentum,
    or DEFAULT_MOMENTUM for optimizer=momentum left at 0 (adam ignores it)."""
    if optimizer.name == OptimizerName.momentum:
        return optimizer.momentum or DEFAULT_MOMENTUM
    return optimizer.momentum


# --- identity of a run -----------------------------------------------------------------------

# The groups that decide what a run computes. tracking/paths/sweep only say where it goes.
TRAINING_GROUPS = ("data", "model", "optimizer", "train")


def training_config(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The resolved part of the config that determines the numbers a run produces (from the
    composed config or its resolved container)."""
    if isinstance(cfg, DictConfig):
        return {g: OmegaConf.to_container(cfg[g], resolve=True) for g in TRAINING_GROUPS}
    return {g: cfg[g] for g in TRAINING_GROUPS}


def config_hash(cfg: DictConfig | Mapping[str, Any]) -> str:
    """A stable hash of the training config: equal for runs that must produce equal histories.
    (JSON writes a Names member as the string it is, so the hash is the one of its value.)"""
    blob = json.dumps(training_config(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys, as MLflow params are stored."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v.value if isinstance(v, Names) else v
    return out


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Safe YAML, with a Names member written as its plain string."""


_Dumper.add_multi_representer(Names, lambda dumper, v: dumper.represent_str(v.value))


def dump_yaml(data: Any) -> str:
    """YAML text of plain data (a config container), block style in insertion order, through
    libyaml when present: ~20x faster than OmegaConf.to_yaml, which loads back the same."""
    return yaml.dump(data, Dumper=_Dumper, default_flow_style=False, allow_unicode=True, sort_keys=False)


def config_dir() -> str:
    """conf/ inside an installed wheel, else the repository's top-level conf/."""
    from pathlib import Path

    here = Path(__file__).resolve().parent
    packaged = here / "conf"
    return str(packaged if packaged.is_dir() else here.parents[1] / "conf")
