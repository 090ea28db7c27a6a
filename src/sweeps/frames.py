"""Store -> frames: the runs of an experiment and their metric histories as pandas frames, the
way ``sweeps-analyze`` labels and plots them (another script's param names understood)."""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any, Optional

import pandas as pd

from sweeps import tracking
from sweeps.config_error import ConfigError
from sweeps.diagnose.params import ALIASES
from sweeps.foreign import existing_label

ROLES_ANALYSED = ("child", "single", "")  # parents, analysis and verification parents are not



def _param(params: dict[str, str], *keys: str, default: Any = "-") -> Any:
    for k in keys:
        if k in params and params[k] not in ("", "None"):
            return params[k]
    return default


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def runs_frame(runs: list[Any]) -> pd.DataFrame:
    """One row per analysable run: identity, the four sweep axes, model and any existing label.
    When a config was run more than once (a resumed sweep), the latest finished run stands."""
    rows = []
    for r in runs:
        tags, params = r.data.tags, r.data.params
        if tags.get(tracking.TAG_ROLE, "") not in ROLES_ANALYSED or "sweeps.fixes" in tags:
            continue
        rows.append({
            "run_id": r.info.run_id,
            "name": r.info.run_name or r.info.run_id[:8],
            "status": r.info.status,
            "start_time": r.info.start_time or 0,
            "config_hash": tags.get(tracking.TAG_HASH, r.info.run_id),
            # another script's names too (diagnose.params.ALIASES: learning_rate, optim, ...)
            "optimizer": _param(params, "optimizer.name", *ALIASES["optimizer.name"]),
            "lr": _float(_param(params, "optimizer.lr", *ALIASES["optimizer.lr"],
                                default=math.nan)),
            "noise": _float(_param(params, "data.noise", "noise", default=math.nan)),
            "zero_grad": str(_param(params, "train.zero_grad", *ALIASES["train.zero_grad"],
                                    default="True")).lower() == "true",
            "model": _param(params, "model", "model.name"),
            "symptom": existing_label(tags, tracking.TAG_ROLE),
            "fix": tags.get("fix", ""),
            "overrides": tags.get("sweeps.overrides"),
            "params": dict(params),
            "tags": dict(tags),
        })
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["finished"] = frame["status"] == "FINISHED"
    frame = frame.sort_values(["finished", "start_time"]).drop_duplicates("config_hash", keep="last")
    return frame.drop(columns="finished").sort_values("start_time").reset_index(drop=True)


# The names other scripts give their losses (Keras, Lightning, Hugging Face, plain MLflow), tried
# in order when sweeps-analyze is not told which metric is which.
TRAIN_NAMES = ("train_loss", "loss", "training_loss", "train/loss", "train_loss_epoch",
               "train/loss_epoch")
VAL_NAMES = ("val_loss", "validation_loss", "valid_loss", "val/loss", "eval_loss",
             "val_loss_epoch", "validation/loss")


def metric_keys(logged: set[str], train_key: Optional[str],
                val_key: Optional[str]) -> tuple[str, str, list[str]]:
    """The metric keys of the train and validation losses, given the keys the runs ``logged``:
    the ones asked for (an error naming what was logged when one is not), else the first of the
    common names logged (TRAIN_NAMES, VAL_NAMES), with a note saying which was read. Where the
    runs logged none of them, ``train_loss`` / ``val_loss`` (a run without it is skipped)."""
    have = ", ".join(sorted(logged)[:12]) + (" ..." if len(logged) > 12 else "") or "none"
    for flag, key in (("--train-metric", train_key), ("--val-metric", val_key)):
        if key is not None and key not in logged:
            raise ConfigError(f"{flag}={key!r}: no run of this experiment logged it; the metrics "
                              f"its runs logged: {have}")
    notes = []
    if train_key is None:
        train_key = next((k for k in TRAIN_NAMES if k in logged), TRAIN_NAMES[0])
        if train_key != TRAIN_NAMES[0]:
            notes.append(f"read metric {train_key!r} as the training loss (--train-metric "
                         "chooses another)")
    if val_key is None:
        val_key = next((k for k in VAL_NAMES if k in logged and k != train_key), VAL_NAMES[0])
        if val_key != VAL_NAMES[0]:
            notes.append(f"read metric {val_key!r} as the validation loss (--val-metric "
                         "chooses another)")
    return train_key, val_key, notes


def histories_frame(uri: str, run_ids: list[str], train_key: str, val_key: str) -> pd.DataFrame:
    """Long frame (run_id, epoch, train_loss, val_loss, grad_norm) read in bulk from the store."""
    hist = tracking.histories(uri, run_ids, [train_key, val_key, "grad_norm"])
    cols: dict[str, list] = {"run_id": [], "epoch": [], "train_loss": [], "val_loss": [], "grad_norm": []}
    for run_id in run_ids:  # columns built as lists, one frame at the end
        t = dict(hist.get((run_id, train_key), []))
        if not t:
            continue
        epochs = sorted(t)
        cols["run_id"] += [run_id] * len(epochs)
        cols["epoch"] += epochs
        cols["train_loss"] += [t[e] for e in epochs]
        cols["val_loss"] += _on_steps(epochs, hist.get((run_id, val_key), []))
        cols["grad_norm"] += _on_steps(epochs, hist.get((run_id, "grad_norm"), []))
    return pd.DataFrame(cols)


def _on_steps(steps: list[int], logged: list[tuple[int, float]]) -> list[float]:
    """A metric's (step, value) history on the train loss's ``steps``: a value logged at one of
    them goes there; one between them (another frequency on the same step axis: validation once
    an epoch, train loss every 50 batches) goes to the last of them before it (the first, if it
    precedes them all) unless a value was logged at that step itself, a later value replacing
    an earlier one; NaN where none falls."""
    out = [math.nan] * len(steps)
    exact = set(steps)
    for step, value in sorted(logged, key=lambda sv: (sv[0] in exact, sv[0])):
        out[max(bisect_right(steps, step) - 1, 0)] = value
    return out
