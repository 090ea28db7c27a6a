"""Dotted-key reads of a run's config: nested mappings or MLflow's flat string params."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, Mapping, Optional

import numpy as np


# Common names of a setting in other training scripts' params (MLflow's flat keys), tried in
# order when the project's own key is missing.
ALIASES: dict[str, tuple[str, ...]] = {
    "optimizer.lr": ("lr", "learning_rate", "optim.lr", "optimizer.learning_rate",
                     "train.lr", "training.lr", "training.learning_rate", "hparams.lr"),
    "train.zero_grad": ("zero_grad", "training.zero_grad", "optim.zero_grad"),
    "train.epochs": ("epochs", "num_epochs", "n_epochs", "training.epochs", "max_epochs",
                     "num_train_epochs"),
    "train.early_stop": ("early_stop", "early_stopping", "training.early_stop",
                         "training.early_stopping"),
    "train.lr_schedule": ("lr_schedule", "lr_scheduler", "lr_scheduler_type", "scheduler",
                          "training.lr_schedule"),
    "train.clip_grad_norm": ("clip_grad_norm", "max_grad_norm", "gradient_clip_val",
                             "grad_clip", "clip_norm", "training.clip_grad_norm"),
    "optimizer.weight_decay": ("weight_decay", "wd", "optim.weight_decay",
                               "training.weight_decay"),
    "train.patience": ("patience", "early_stopping_patience", "training.patience"),
    "optimizer.name": ("optimizer", "optim", "optimizer.type", "optim.name", "optimizer_name"),
    "data.baseline_loss": ("baseline_loss", "constant_loss", "chance_loss"),
    "train.loss": ("loss", "loss_fn", "loss_function", "criterion", "objective", "training.loss"),
    "model.n_params": ("n_params", "num_params", "num_parameters", "n_parameters",
                       "total_params", "model.num_params", "model.num_parameters"),
    "train.batch_size": ("batch_size", "training.batch_size", "train_batch_size",
                         "per_device_train_batch_size"),
    "data.n_train": ("n_train", "train_size", "num_train", "n_train_samples", "data.train_size"),
    "data.normalize": ("normalize", "normalise", "standardize", "standardise", "data.standardize"),
}


class Params:
    """Dotted-key reads from a nested mapping (or attribute tree) or MLflow's flat string params."""

    def __init__(self, config: Any) -> None:
        self.config = config if config is not None else {}

    def source(self, key: str) -> Optional[str]:
        """The key a value for ``key`` is read from: ``key`` itself, or the first of its
        common names (ALIASES) that another script's params have; None if none. A group of
        settings (``optimizer: {lr: ...}``) is not a value for a setting named like it."""
        for k in (key, *ALIASES.get(key, ())):
            v = self._get(k)
            if v is not None and not isinstance(v, (Mapping, SimpleNamespace)):
                return k
        return None

    def own(self) -> bool:
        """Is this one of this project's configs (its overrides apply), not another script's?
        Yes when it has a key of this project's groups (train.*, optimizer.*, data.*, model.*;
        a script logging ``optimizer.lr`` is then told ``optimizer.lr=...``, its own name), not
        when a flat param merely shares a group's name (``optimizer=sgd``)."""
        groups = ("train", "optimizer", "data", "model")
        c = self.config
        if isinstance(c, Mapping):  # no params at all: nothing says it is another script's
            # a group (nested) or a dotted key in one; a flat ``optimizer: "sgd"`` is a name
            return not c or any(k in groups and isinstance(v, (Mapping, SimpleNamespace))
                                or str(k).split(".", 1)[0] in groups and "." in str(k)
                                for k, v in c.items())
        return any(hasattr(c, g) for g in groups)

    def get(self, key: str) -> Any:
        src = self.source(key)
        return self._get(src) if src is not None else None

    def _get(self, key: str) -> Any:
        node: Any = self.config
        if isinstance(node, Mapping) and key in node:
            return node[key]
        for part in key.split("."):
            if isinstance(node, Mapping):
                if part not in node:
                    return None
                node = node[part]
            elif hasattr(node, part):
                node = getattr(node, part)
            else:
                return None
        return node

    def get_float(self, key: str) -> Optional[float]:
        v = self.get(key)
        if v is None or isinstance(v, bool):
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            return None  # "None", "null", "" and other non-numbers

    def get_int(self, key: str) -> Optional[int]:
        v = self.get_float(key)
        return int(v) if v is not None and math.isfinite(v) else None

    def get_bool(self, key: str) -> Optional[bool]:
        v = self.get(key)
        if isinstance(v, str):
            return {"true": True, "false": False, "1": True, "0": False, "yes": True,
                    "no": False, "on": True, "off": False}.get(v.strip().lower())
        return bool(v) if isinstance(v, (bool, int, np.bool_)) else None


def heavy_ball(cfg: Params) -> float:
    """The momentum of a plain-gradient optimizer (SGD, momentum): what its velocity keeps per
    step. 0 for the adaptive ones (Adam, RMSprop, Adagrad, ...), whose steps are normalised to
    about the lr whatever the gradient, and for a run that does not say."""
    from sweeps.config import DEFAULT_MOMENTUM, OptimizerName

    name = str(cfg.get("optimizer.name") or "").lower()
    if name not in ("", OptimizerName.sgd, OptimizerName.momentum):
        return 0.0
    beta = cfg.get_float("optimizer.momentum")
    if beta is None:
        beta = DEFAULT_MOMENTUM if name == OptimizerName.momentum else 0.0
    return beta if 0.0 <= beta < 1.0 else 0.0



# Optimizers that divide each step by a running root mean square of the gradients: every weight
# moves about lr per step, however large or small its gradient.
ADAPTIVE = ("adam", "adamw", "rmsprop", "adagrad", "adamax", "nadam", "radam")


def adaptive(cfg: Params) -> bool:
    """Does the run's optimizer move every weight by about lr a step (ADAPTIVE)?"""
    return str(cfg.get("optimizer.name") or "").lower() in ADAPTIVE
