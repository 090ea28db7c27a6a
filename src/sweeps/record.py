"""A run's record as plain data: what one job leaves in the store, made from its config, its
overrides, its History and its Diagnosis. Pure; every launcher route writes what this returns
(``sweeps.app.write``), so the same config leaves the same run whichever route recorded it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from sweeps import tracking
from sweeps.config import config_hash, dump_yaml, flatten

TAG_BATCH = "sweeps.batch"  # how a batched run's duration was measured
BASELINE = "data.baseline_loss"  # a param: the training loss of predicting the mean target

# The four sweep axes, in the order run names show them.
AXES = ("optimizer.name", "optimizer.lr", "data.noise", "train.zero_grad")


@dataclass
class RunRecord:
    """One run's contents. ``tags``/``params`` are known before it trains; the rest after."""

    name: str
    tags: dict[str, Any]  # identity: role, config hash, sweep, overrides, host, pid, parent
    params: dict[str, str]  # the flattened resolved config and the group choices
    end_tags: dict[str, Any] = field(default_factory=dict)  # label, cause, fix, story, stop
    texts: dict[str, str] = field(default_factory=dict)  # config.yaml and Hydra's .hydra files
    metrics: Mapping[str, Sequence[float]] = field(default_factory=dict)  # per epoch from 0
    start_ms: Optional[int] = None  # a batched run's share of its program's time (else: as it runs)
    end_ms: Optional[int] = None


def run_name(cfg: Mapping[str, Any], overrides: Sequence[str]) -> str:
    """A readable name from the swept values, e.g. ``sgd lr=0.3 noise=0.5 zero_grad=off``,
    followed by any other override that makes this job differ (``model=poly seed=3``).
    ``cfg``: the composed config or its resolved container."""
    opt, data, train = cfg["optimizer"], cfg["data"], cfg["train"]
    zg = "on" if train["zero_grad"] else "off"
    parts = [f"{opt['name']}", f"lr={opt['lr']:g}", f"noise={data['noise']:g}", f"zero_grad={zg}"]
    shown = {"optimizer", *AXES}
    for ov in overrides:
        key, _, value = ov.lstrip("+~").partition("=")
        if key in shown or key.startswith(("tracking.", "paths.", "hydra.", "sweep")):
            continue
        parts.append(f"{key.split('.')[-1]}={value}")
    return " ".join(parts)


def begin(container: Mapping[str, Any], overrides: Sequence[str], choices: Mapping[str, str], *,
          host: str, pid: int, parent: Optional[Mapping[str, Any]] = None,
          extra_tags: Optional[Mapping[str, Any]] = None, trained: Any = None,
          baseline: Optional[float] = None) -> RunRecord:
    """A run's identity, before it trains: its name, tags (config hash, sweep, overrides, where
    it runs, its parent) and params (the flattened resolved config plus the group choices).
    ``trained``: a History already trained in a batched program, whose share of the program's
    time becomes the run's start and end, with a ``sweeps.batch`` tag that says so.
    ``baseline``: the loss of predicting the mean target, recorded as ``data.baseline_loss``."""
    params = flatten(container)
    if baseline is not None:
        params[BASELINE] = f"{baseline:.6g}"
    params.update({g: c for g, c in choices.items() if not g.startswith("hydra") and c})
    tags = {
        tracking.TAG_ROLE: "child" if parent else "single",
        tracking.TAG_HASH: config_hash(container),
        "sweeps.sweep": container["sweep"]["name"],
        "sweeps.overrides": " ".join(overrides),
        tracking.TAG_HOST: host,
        tracking.TAG_PID: pid,
        **(extra_tags or {}),
    }
    if parent:
        tags[tracking.TAG_PARENT] = parent["run_id"]
    rec = RunRecord(run_name(container, overrides), tags, tracking.params_for(params))
    if trained is not None and trained.batch > 1 and trained.started:
        rec.start_ms = int(trained.started * 1000)
        rec.end_ms = max(rec.start_ms + 1, int((trained.started + trained.seconds) * 1000))
        tags[TAG_BATCH] = (f"trained with {trained.batch - 1} other runs in one batched program of "
                           f"{trained.seconds * trained.batch:.2f} s; its duration is a 1/{trained.batch} share")
    return rec


def complete(rec: RunRecord, container: Mapping[str, Any], history: Any, diagnosis: Any,
             hydra_files: Mapping[str, str], resolved_yaml: Optional[str] = None) -> RunRecord:
    """``rec`` with what training left: the label, cause, fix and story (the run's description),
    how training stopped, the config artifacts (``resolved_yaml`` when already dumped) and the
    per-epoch metrics. Credentials are scrubbed when tracking queues them."""
    rec.end_tags = {
        "symptom": diagnosis.symptom,
        "cause": diagnosis.cause,
        "fix": diagnosis.fix_str(),
        "symptom_confidence": diagnosis.confidence,  # clear | borderline: filter doubtful runs
        tracking.TAG_NOTE: diagnosis.markdown(),
        "sweeps.stop_reason": history.stop_reason,
        "sweeps.epochs_run": history.epochs_run,
        "sweeps.device": history.device,
    }
    rec.texts = {"config.yaml": resolved_yaml if resolved_yaml is not None else dump_yaml(container),
                 **{f"hydra/{k}": v for k, v in sorted(hydra_files.items())}}
    rec.metrics = history.metrics
    return rec
