"""Runs of this project's own loop (sweeps.loop.train through its Python API) and their truth:
the preset's analytic truth where the model is linear in its parameters, else continuations."""

from __future__ import annotations

import math
from typing import Any

from hydra import compose
from omegaconf import OmegaConf

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
    conf = training_config(cfg)
    if linear_problem(cfg) is not None:
        h = history(cfg)

        class _H(dict):
            pass
        t = ground_truth(cfg, _H(h))
        truth = {"symptom": t.symptom, "why": t.why, "source": "analytic",
                 "measures": {k: float(v) for k, v in t.measures.items()
                              if isinstance(v, (int, float)) and math.isfinite(v)}}
    else:
        T, lr = cfg.train.epochs, cfg.optimizer.lr
        cont = history(_with(cfg, train__epochs=10 * T))
        # Same seed, constant lr: the run is the continuation's first T epochs, step for step.
        constant = cfg.train.lr_schedule == "constant"
        h = {k: v[:T] for k, v in cont.items()} if constant else history(cfg)
        hi = history(_with(cfg, optimizer__lr=lr * 10))
        const = None if constant else \
            history(_with(cfg, train__epochs=10 * T, train__lr_schedule="constant"))
        return {"overrides": overrides, "config": conf, "history": h, "full_batch": True,
                "continuations": continuations(cont, hi, const)}
    return {"overrides": overrides, "config": conf, "history": h, "truth": truth,
            "full_batch": True}


def continuations(cont: dict, hi: dict, const: dict | None) -> dict[str, dict]:
    """What the continuation truth reads: the loss curves of C, Hi and K."""
    keep = ("train_loss", "val_loss")
    return {name: {k: h[k] for k in keep} for name, h in (("C", cont), ("Hi", hi), ("K", const))
            if h is not None}
