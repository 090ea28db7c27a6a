"""sweeps-analyze on an experiment logged by someone else's script with plain mlflow.log_metrics:
fixes in that script's own param names, and nothing its owner wrote is overwritten."""

from __future__ import annotations

import math

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from conftest import run_cli
from sweeps.diagnose import diagnose

NOTE = "mlflow.note.content"
BEGIN = "<!-- sweeps:diagnosis -->"


def _log(name: str, params: dict, losses: list[float], tags: dict | None = None) -> str:
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params(params)
        if tags:
            mlflow.set_tags(tags)
        for step, loss in enumerate(losses):
            mlflow.log_metrics({"loss": loss, "val_loss": loss * 1.1}, step=step)
        return run.info.run_id


def test_foreign_run_keeps_its_tags_and_description(tmp_path):
    uri = f"sqlite:///{tmp_path / 'theirs.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("theirs")
    try:
        # accumulating gradients (zero_grad False) at lr 3.0: the loss triples to a NaN
        bad = _log("bad", {"lr": "3.0", "zero_grad": "False"},
                   [3.0**i for i in range(12)] + [math.nan],
                   {"symptom": "my own verdict", NOTE: "notes the owner wrote"})
        fine = _log("fine", {"learning_rate": "0.01"}, [0.05 + 0.9**i for i in range(80)])
    finally:
        mlflow.set_tracking_uri(None)
    args = ["--tracking-uri", uri, "--experiment", "theirs", "--train-metric", "loss",
            "--val-metric", "val_loss", "--no-plots", "--output-root", str(tmp_path / "out")]
    proc = run_cli(args, tmp_path, module="sweeps.analyze")
    c = MlflowClient(uri)
    tags = c.get_run(bad).data.tags
    assert tags["symptom"] == "my own verdict"  # the owner's tag is left alone ...
    assert tags["sweeps.symptom"] == "diverged"  # ... the label goes beside it
    assert tags["sweeps.symptom_confidence"] in ("clear", "borderline")
    assert "zero_grad() is missing" in tags["sweeps.cause"]
    # the fix in the script's own param names, none of this project's train.* keys
    assert "zero_grad: False -> True" in tags["sweeps.fix"]
    assert "train." not in tags["sweeps.fix"] and "optimizer." not in tags["sweeps.fix"]
    note = tags[NOTE]
    assert note.startswith("notes the owner wrote") and note.count(BEGIN) == 1
    assert "**diverged**" in note
    assert proc.stdout.count("had their own symptom/cause/fix tags") == 1
    # the run without tags of its own gets the plain tags
    assert c.get_run(fine).data.tags["symptom"] == "healthy"
    assert "the analysis run in experiment 'theirs'" in proc.stdout
    assert "sweep's parent run" not in proc.stdout

    # a second analysis replaces its own block and still leaves the owner's words
    run_cli(args + ["--relabel"], tmp_path, module="sweeps.analyze")
    again = c.get_run(bad).data.tags
    assert again["symptom"] == "my own verdict"
    assert again[NOTE].startswith("notes the owner wrote") and again[NOTE].count(BEGIN) == 1


def _one_run(tmp_path, experiment: str, params: dict, losses: list[float]) -> tuple[str, str]:
    """A store holding one run of someone's script, analysed by sweeps-analyze: (uri, run id)."""
    uri = f"sqlite:///{tmp_path / 'theirs.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    try:
        run = _log(experiment, params, losses)
    finally:
        mlflow.set_tracking_uri(None)
    run_cli(["--tracking-uri", uri, "--experiment", experiment, "--train-metric", "loss",
             "--val-metric", "val_loss", "--no-plots", "--output-root", str(tmp_path / "out")],
            tmp_path, module="sweeps.analyze")
    return uri, run


def test_foreign_lr_fix_in_own_terms(tmp_path):
    """An lr under another name gets its fix as ``name: old -> new``; the rest in words."""
    # a straight, barely sloping fall: far from where it is heading (stalled)
    uri, run = _one_run(tmp_path, "lr-names", {"learning_rate": "0.001"},
                        [1.0 - 0.001 * i for i in range(100)])
    tags = MlflowClient(uri).get_run(run).data.tags
    assert tags["symptom"] == "stalled"
    assert tags["fix"].startswith("learning_rate: 0.001 -> ")
    assert "data.normalize" not in tags[NOTE] and "standardise the inputs" in tags[NOTE]


def test_foreign_raw_inputs_fix_names_the_scripts_own_switch(tmp_path):
    """A script that logs its own ``normalize`` switch, off, and whose loss barely moved: the fix
    turns that switch on (with the lr raise), in the script's names."""
    # 3% of its start in 100 epochs, in a straight line: barely moved, nowhere near a floor
    uri, run = _one_run(tmp_path, "raw", {"learning_rate": "0.001", "normalize": "False"},
                        [1.0 - 0.0003 * i for i in range(100)])
    tags = MlflowClient(uri).get_run(run).data.tags
    assert tags["symptom"] == "stalled"
    assert "normalize: False -> True" in tags["fix"] and "learning_rate: 0.001 -> " in tags["fix"]
    assert "data.normalize" not in tags["fix"] and "not normalised" in tags["cause"]


def test_foreign_model_that_can_memorise_stops_early_in_words(tmp_path):
    """A script that logs its model's size and its training points (num_params, train_size)
    and no label noise: with as many parameters as points its stall's fix also stops early, in
    words; the same run logging under half as many parameters as points gets the lr raise
    alone."""
    fall = [1.0 - 0.001 * i for i in range(100)]  # straight, barely sloping: stalled
    (tmp_path / "big").mkdir()
    (tmp_path / "small").mkdir()
    uri, big = _one_run(tmp_path / "big", "big",
                        {"learning_rate": "0.001", "num_params": "5000", "train_size": "100"},
                        fall)
    tags = MlflowClient(uri).get_run(big).data.tags
    assert tags["symptom"] == "stalled"
    assert "learning_rate: 0.001 -> " in tags["fix"] and "early stopping" in tags["fix"]
    assert "train." not in tags["fix"]
    assert "5,000 parameters for 100 training points" in tags["cause"]
    uri, small = _one_run(tmp_path / "small", "small",
                          {"learning_rate": "0.001", "num_params": "30", "train_size": "100"},
                          fall)
    tags = MlflowClient(uri).get_run(small).data.tags
    assert tags["symptom"] == "stalled" and "early stopping" not in tags["fix"]


def test_foreign_fix_uses_the_scripts_names_for_clipping_decay_and_stopping(tmp_path):
    """Hugging Face and Lightning style names (``max_grad_norm``, ``weight_decay``,
    ``early_stopping``, ``num_train_epochs``): the fix and its alternatives change those params,
    not words for them and never this project's keys."""
    # the loss triples every epoch from 1 (gradient descent with lr x curvature ~ 2.7): diverged
    names = {"learning_rate": "0.5", "max_grad_norm": "0.0", "weight_decay": "0.0",
             "early_stopping": "False", "num_train_epochs": "20"}
    uri, run = _one_run(tmp_path, "hf-names", names, [3.0**i for i in range(20)])
    tags = MlflowClient(uri).get_run(run).data.tags
    assert tags["symptom"] == "diverged"
    assert tags["fix"].startswith("learning_rate: 0.5 -> ")
    assert "`max_grad_norm: 0.0 -> 1.0`" in tags[NOTE]  # the alternative to the lr cut
    assert "train." not in tags[NOTE] and "optimizer." not in tags[NOTE]


def test_foreign_overfitting_fix_switches_the_scripts_own_early_stopping_on():
    # by construction: train falls to its floor while val, after its minimum near epoch 30,
    # climbs in a straight line 0.004 an epoch to the end (to 0.58, from 0.35)
    e = np.arange(100.0)
    train = 0.05 + np.exp(-e / 10)
    val = 0.3 + np.exp(-e / 10) + 0.004 * np.clip(e - 30, 0, None)
    cfg = {"learning_rate": "0.01", "weight_decay": "0.0", "early_stopping": "False",
           "num_train_epochs": "100"}
    d = diagnose(list(train), list(val), config=cfg)
    assert d.symptom == "overfitting"
    assert d.fix == ["early_stopping: False -> True"]
    assert d.alternatives == ["weight_decay: 0.0 -> 0.01"]
