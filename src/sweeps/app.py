"""One Hydra job: check the config, train, diagnose, record. The task function every launcher
calls; it returns the final validation loss so optimising sweepers can use it as the objective.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping, Optional

from omegaconf import DictConfig, OmegaConf

from sweeps import record, stopping, tracking
from sweeps.checks import validate
from sweeps.config import config_hash, training_config
from sweeps.data import baseline_loss
from sweeps.diagnose import diagnose
from sweeps.loop import History, resolve_device, train
from sweeps.progress import mark_job

log = logging.getLogger(__name__)

PARENT_FILE = ".sweeps/parent.json"  # under the sweep dir: how each job finds its parent run

def store_location(cfg: Mapping[str, Any]) -> tuple[str, str, Path]:
    """(tracking URI, experiment name, artifact root) for this config (or its container);
    nothing is opened."""
    uri = tracking.resolve_uri(cfg["tracking"]["uri"], cfg["paths"]["output_dir"])
    experiment = cfg["tracking"]["experiment"] or cfg["sweep"]["name"]
    return uri, experiment, Path(cfg["paths"]["output_dir"]).resolve() / "mlartifacts"


def hydra_files(job_dir: Optional[Path]) -> dict[str, str]:
    """What Hydra wrote into the job's .hydra/ folder."""
    folder = job_dir / ".hydra" if job_dir else None
    if not folder or not folder.is_dir():
        return {}
    return {f.name: f.read_text() for f in sorted(folder.glob("*.yaml"))}


_HOST = socket.gethostname()


def _hydra() -> Any:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def find_parent(sweep_dir: Optional[str]) -> Optional[dict[str, Any]]:
    """What the multirun's start callback left in the sweep dir for its jobs: the parent run,
    its experiment and the finished configs to skip (``done``: hash -> run_id, val_loss)."""
    if not sweep_dir:
        return None
    path = Path(sweep_dir) / PARENT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass
class Outcome:
    """What one executed config left behind."""

    name: str
    history: History
    diagnosis: Any
    run_id: Optional[str] = None  # None when tracking is off

    @property
    def objective(self) -> float:
        return self.history["val_loss"][-1] if self.history.epochs_run else math.nan


def run_job(cfg: DictConfig) -> float:
    """The Hydra task: execute this job's config, under the sweep's parent run in a multirun.
    Returns the final validation loss (the objective for optimising sweepers)."""
    hc = _hydra()
    multirun = hc is not None and str(hc.mode) == "RunMode.MULTIRUN"
    parent = find_parent(hc.sweep.dir) if multirun else None
    if parent and cfg.sweep.resume:
        done = parent.get("done", {}).get(config_hash(cfg))
        if done is not None:  # finished in an earlier launch: resume by content, not job number
            mark_job(hc.sweep.dir, hc.job.num, "SKIPPED")
            log.info("%s -> skipped: finished earlier as run %s", record.run_name(cfg, list(hc.overrides.task)),
                     done["run_id"])
            return done["val_loss"]
    outcome = execute(
        cfg, list(hc.overrides.task) if hc else [], parent=parent,
        job_dir=Path(hc.runtime.output_dir) if hc else None,
        extra_tags={"sweeps.job_num": hc.job.num} if parent else None,
    )
    return outcome.objective


def execute(cfg: DictConfig, overrides: list[str], parent: Optional[dict[str, str]] = None,
            job_dir: Optional[Path] = None, extra_tags: Optional[dict[str, Any]] = None,
            trained: Optional[History] = None) -> Outcome:
    """Train one config, label it and record it as an MLflow run.

    Args:
        cfg: the composed config.
        overrides: the overrides that made it (for the run name and the ``sweeps.overrides`` tag).
        parent: ``{"run_id", "experiment_id"}`` of the parent run, or None for a lone run.
        job_dir: Hydra's job output dir, whose ``.hydra/`` files are stored with the run.
        extra_tags: more tags for the run.
        trained: a History computed elsewhere (a batched engine); recorded as if trained here.

    Raises:
        ConfigError: a value is not allowed, the device is missing or the store is not writable
            (raised before anything is written).
    """
    stopping.check()  # between jobs: a stop whose interrupt was lost ends the sweep here
    validate(cfg)
    resolve_device(cfg.train.device)
    container = OmegaConf.to_container(cfg, resolve=True)
    name = record.run_name(container, overrides)
    if not cfg.tracking.enabled:
        history = trained if trained is not None else train(cfg)
        return _report(Outcome(name, history, label(cfg, history)))

    uri, experiment, artifacts = store_location(cfg)
    tracking.check_writable(uri)
    exp_id = parent["experiment_id"] if parent else tracking.experiment_id(uri, experiment, str(artifacts))
    hc = _hydra()
    choices = dict(hc.runtime.choices) if hc else _choices(overrides)
    rec = record.begin(container, overrides, choices, host=_HOST, pid=os.getpid(), parent=parent,
                       extra_tags=extra_tags, trained=trained, baseline=baseline(container))
    job_num = (extra_tags or {}).get("sweeps.job_num")
    marks = parent.get("sweep_dir") if parent and job_num is not None else None
    try:
        outcome = _record(cfg, container, uri, exp_id, rec, job_dir, trained)
    except BaseException as err:
        if marks:
            mark_job(marks, job_num, stopping.status_for(err))
        if stopping.is_stop(err) and not isinstance(err, stopping.Stopped):
            raise stopping.as_stopped(err) from err  # an error the stop caused
        if tracking.unreachable(err) and not isinstance(err, tracking.StoreUnreachable):
            raise tracking.store_unreachable(uri, err) from err
        raise
    if marks:
        mark_job(marks, job_num, "FINISHED", outcome.diagnosis.symptom)
    return _report(outcome)


def _record(cfg: DictConfig, container: dict[str, Any], uri: str, exp_id: str, rec: record.RunRecord,
            job_dir: Optional[Path], trained: Optional[History]) -> Outcome:
    """Train (unless ``trained`` is given), diagnose and write one run."""
    with tracking.run(uri, exp_id, rec.name, rec.tags, rec.params, start_time=rec.start_ms) as rl:
        history = trained if trained is not None else \
            train(cfg, on_flush=rl.log_epochs, flush_every_s=cfg.tracking.flush_every_s)
        diagnosis = label(container, history)
        write(rl, record.complete(rec, container, history, diagnosis, hydra_files(job_dir)))
    return Outcome(rec.name, history, diagnosis, rl.run_id)


def write(rl: tracking.RunLog, rec: record.RunRecord) -> None:
    """Queue what a run's record holds beyond what the run log already sent (its identity went
    in when it opened; a long run's first epochs went while it trained)."""
    sent = rl.sent_epochs
    rl.end_time = rec.end_ms
    rl.add(tags=rec.end_tags, texts=rec.texts)
    rl.queue_epochs(sent, {k: v[sent:] for k, v in rec.metrics.items()})


def apply_fix(overrides: list[str], fix: str) -> list[str]:
    """The overrides with ``fix`` (``key=value``) replacing any override of the same key."""
    key = fix.split("=", 1)[0].lstrip("+~")
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key] + [fix]


def _choices(overrides: list[str]) -> dict[str, str]:
    """Config-group choices named in overrides (``optimizer=adam``), when Hydra is not running."""
    groups = ("data", "model", "optimizer", "train", "tracking")
    out = {}
    for ov in overrides:
        key, _, value = ov.lstrip("+~").partition("=")
        if key in groups:
            out[key] = value
    return out


def baseline(cfg: Mapping[str, Any]) -> float:
    """The run's ``data.baseline_loss`` as its params keep it (6 significant digits): the
    training loss of predicting the mean target, drawn from the config (composed or container).
    Drawn once per data set: a sweep's runs mostly share theirs, and label and record ask."""
    data, seed = tuple(sorted(cfg["data"].items())), int(cfg["train"]["seed"])
    try:
        return _baseline(data, seed)
    except TypeError:  # a value that cannot be a cache key (a list someone added): draw it
        return _baseline.__wrapped__(data, seed)


@lru_cache(maxsize=256)
def _baseline(data: tuple[tuple[str, Any], ...], seed: int) -> float:
    return float(f"{baseline_loss(SimpleNamespace(**dict(data)), seed):.6g}")


def label(cfg: Mapping[str, Any], history: History) -> Any:
    """Diagnose a run from its history and config (composed or container), with the baseline
    loss its params record."""
    config = training_config(cfg)
    config["data"] = {**config["data"], "baseline_loss": baseline(cfg)}
    return diagnose(history["train_loss"], history["val_loss"], config=config,
                    grad_norm=history["grad_norm"])


def verdict_line(outcome: Outcome) -> str:
    """The job's log line: ``sgd lr=0.1 ... -> oscillating after 200 epochs (val_loss 3.2)``."""
    return (f"{outcome.name} -> {outcome.diagnosis.symptom} after {outcome.history.epochs_run} "
            f"epochs (val_loss {outcome.objective:.4g})")


def _report(outcome: Outcome) -> Outcome:
    log.info("%s", verdict_line(outcome))
    return outcome
