"""Runs of this project's own loop (sweeps.loop.train through its Python API) and their truth:
the preset's analytic truth where the model is linear in its parameters, else continuations."""

from __future__ import annotations

import math
from typing import Any

from hydra import compose
from omegaconf import OmegaConf

from corpus.truth import judge
from ground_truth import ground_truth, linear_problem
from sweeps.config import training_config
from sweeps.loop import train


def compose_run(overrides: list[str]) -> Any:
    return compose("config", overrides=["train.device=cpu", *overrides])


def history(cfg: Any) -> dict[str, list[float]]:
    h = train(cfg)
    return {k: list(h[k]) for k in ("train_loss", "val_loss", "grad_norm")}


def _with(cfg: Any, **changes: Any) -> Any:
    patch: dict[str, dict[str, Any]] = {}
    for key, v in changes.items():
        group, name = key.split("__")
        patch.setdefault(group, {})[name] = v
    return OmegaConf.merge(cfg, patch)


def build_run(overrides: list[str]) -> dict[str, Any]:
    """One runner run: its history, the config the labeller sees and the ground truth."""
    cfg = compose_run(overrides)
    h = history(cfg)
    conf = training_config(cfg)
    if linear_problem(cfg) is not None:
        class _H(dict):
            pass
        t = ground_truth(cfg, _H(h))
        truth = {"symptom": t.symptom, "why": t.why, "source": "analytic",
                 "measures": {k: float(v) for k, v in t.measures.items()
                              if isinstance(v, (int, float)) and math.isfinite(v)}}
    else:
        T, lr = cfg.train.epochs, cfg.optimizer.lr
        cont = history(_with(cfg, train__epochs=10 * T))
        hi = history(_with(cfg, optimizer__lr=lr * 10))
        const = None
        if cfg.train.lr_schedule != "constant":
            const = history(_with(cfg, train__epochs=10 * T, train__lr_schedule="constant"))
        truth = {**judge(h, cont, hi, const), "source": "continuation"}
    return {"overrides": overrides, "config": conf, "history": h, "truth": truth,
            "full_batch": True}
