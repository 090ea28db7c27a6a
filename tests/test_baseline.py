"""A net that collapses onto the mean: its loss falls to what predicting one value for every
input scores (the baseline loss: the targets' variance under MSE) and stays there, flat. From
the curve alone that looks converged; with the baseline the run records (this project's
runner: the ``data.baseline_loss`` param; another script: a ``baseline_loss`` param) it is
stalled, and the fix cuts the lr whose first steps saturated the net.

Every expectation comes from continuation runs of a plain-torch script written here (not this
project's loop): 10x the epochs stays at the baseline (nothing learned, ever), Adam's usual lr
(0.01) gets far below it; or from analysis (targets that do not depend on x: the mean is the
best there is).
"""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import run_cli
from plain_torch import full_batch_adam
from sweeps.diagnose import diagnose

CHANCE = 0.05  # within this share of the baseline: nothing learned (the benchmark's rule)


def _script(lr: float, epochs: int, slope: float = 0.8, noise: float = 0.0):
    """Someone's training script: a tanh MLP (2 x 32, torch's default init) fitted by full-batch
    Adam to 80 points on y = slope x + 0.5 (+ noise), 20 held out. Returns (train losses, val
    losses, baseline), the baseline being the training targets' variance."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(100, 1, generator=g, dtype=torch.float64) * 2 - 1
    y = slope * x + 0.5 + noise * torch.randn(100, 1, generator=g, dtype=torch.float64)
    xt, yt, xv, yv = x[:80].float(), y[:80].float(), x[80:].float(), y[80:].float()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32),
                              torch.nn.Tanh(), torch.nn.Linear(32, 1))
    train, val = full_batch_adam(net, lr, epochs, (xt, yt, xv, yv))
    return train, val, float(((yt.double() - yt.double().mean()) ** 2).mean())


# lr 3 and 10: the first 10-25 judged epochs still swing by up to 25% of the baseline before the
# net freezes onto it; the swings died out (10x the epochs: flat at the baseline), so the run is
# judged by where it sits, not read as oscillating.
@pytest.mark.parametrize("lr", [0.3, 1.0, 3.0, 10.0])
def test_a_net_collapsed_onto_the_mean_is_stalled(lr):
    T = 200
    train, val, base = _script(lr, T)
    # The truth, from continuations: 10x the epochs never leaves the baseline ...
    longer, _, _ = _script(lr, 10 * T)
    assert min(longer) >= (1 - CHANCE) * base
    # ... while Adam's usual lr learns the line: the inputs had plenty to teach.
    lower, _, _ = _script(0.01, T)
    assert lower[-1] < 0.1 * base
    d = diagnose(train, val, config={"lr": lr, "baseline_loss": base})
    assert d.symptom == "stalled", d.evidence
    assert "learned nothing from its inputs" in d.cause and "overshot" in d.cause
    # the swings of the judged half are gone by its last quarter (both by the script's numbers)
    tail = train[int(0.75 * T):]
    assert max(tail) < (1 + CHANCE) * base and max(train[T // 2:]) > max(tail)
    assert d.confidence == "clear"
    # the fix, in the script's own terms, cuts the lr, and the cut heals it
    assert d.fix_str().startswith(f"lr: {lr} -> ")
    new_lr = float(d.fix_str().split("-> ")[1].split()[0])
    assert new_lr < lr
    healed, _, _ = _script(new_lr, T)
    assert healed[-1] < 0.1 * base


def test_a_net_that_learned_is_not_held_to_the_baseline():
    train, val, base = _script(0.01, 200)
    assert train[-1] < 0.1 * base  # it left the baseline far behind
    d = diagnose(train, val, config={"lr": 0.01, "baseline_loss": base})
    assert "baseline_loss" not in d.evidence and "learned nothing" not in d.cause


def test_targets_that_ignore_the_inputs_leave_nothing_to_learn():
    """y does not depend on x: the mean is the best prediction (noise**2 is the floor, the
    baseline's level), so a run that sits there is done, not stalled."""
    train, val, base = _script(0.01, 200, slope=0.0, noise=0.5)
    assert abs(train[-1] / base - 1) < CHANCE  # it sits at the baseline ...
    d = diagnose(train, val, config={"optimizer": {"name": "adam", "lr": 0.01},
                                     "data": {"noise": 0.5, "baseline_loss": base}})
    assert "learned nothing" not in d.cause  # ... which is all the data allows


def _foreign(tmp_path, log_baseline: bool) -> tuple[str, str, float]:
    """A store written by the script above with plain mlflow calls: (uri, run id, baseline)."""
    uri = f"sqlite:///{tmp_path / 'theirs.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("mean")
    try:
        train, val, base = _script(1.0, 200)
        with mlflow.start_run(run_name="collapsed") as run:
            mlflow.log_params({"lr": "1.0", **({"baseline_loss": f"{base:.6g}"}
                                                if log_baseline else {})})
            for step, (a, b) in enumerate(zip(train, val)):
                mlflow.log_metrics({"loss": a, "val_loss": b}, step=step)
    finally:
        mlflow.set_tracking_uri(None)
    return uri, run.info.run_id, base


def _analyze(tmp_path, uri: str, *extra: str, check: bool = True):
    return run_cli(["--tracking-uri", uri, "--experiment", "mean", "--train-metric", "loss",
                    "--val-metric", "val_loss", "--no-plots", "--output-root",
                    str(tmp_path / "out"), *extra], tmp_path, module="sweeps.analyze", check=check)


def test_analyze_reads_a_scripts_baseline_loss_param(tmp_path):
    uri, run_id, _ = _foreign(tmp_path, log_baseline=True)
    _analyze(tmp_path, uri)
    tags = MlflowClient(uri).get_run(run_id).data.tags
    assert tags["symptom"] == "stalled"
    assert tags["fix"].startswith("lr: 1.0 -> 0.")
    assert "learned nothing from its inputs" in tags["cause"]


def test_analyze_takes_a_baseline_from_the_command_line(tmp_path):
    """A script that logged no baseline: ``--baseline-loss`` gives it for the whole experiment."""
    uri, run_id, base = _foreign(tmp_path, log_baseline=False)
    for bad in ("-1", "nan", "zero"):  # a clear error, and nothing written
        proc = _analyze(tmp_path, uri, f"--baseline-loss={bad}", check=False)
        assert proc.returncode == 2
        assert proc.stderr.strip() == (f"error: --baseline-loss={bad!r}: must be a positive "
                                       "number, the loss of predicting a constant (e.g. the "
                                       "training targets' variance)")
        assert "symptom" not in MlflowClient(uri).get_run(run_id).data.tags
    _analyze(tmp_path, uri, f"--baseline-loss={base:.6g}")
    tags = MlflowClient(uri).get_run(run_id).data.tags
    assert tags["symptom"] == "stalled" and tags["fix"].startswith("lr: 1.0 -> 0.")
    assert "baseline_loss" not in MlflowClient(uri).get_run(run_id).data.params  # not written


def test_the_runner_records_its_baseline_and_labels_the_collapse(cli, tmp_path):
    """``sweeps model=mlp optimizer=adam optimizer.lr=1.0``: the net's first Adam steps saturate
    its tanh units and it predicts the mean; the run records data.baseline_loss, which the
    loss it ends at matches (an MSE of predicting the mean is the variance), and the label."""
    cli("model=mlp", "optimizer=adam", "optimizer.lr=1.0", "train.epochs=200")
    uri = cli.uri
    c = MlflowClient(uri)
    (run,) = [r for e in c.search_experiments() for r in c.search_runs([e.experiment_id])
              if r.data.tags.get("sweeps.role") == "single"]
    base = float(run.data.params["data.baseline_loss"])
    assert math.isclose(run.data.metrics["train_loss"], base, rel_tol=1e-3)
    assert run.data.tags["symptom"] == "stalled"
    assert "optimizer.lr=0.01" in run.data.tags["fix"]
    # a later analysis reads the baseline back from the param and agrees
    run_cli(["--tracking-uri", uri, "--experiment", "adhoc", "--relabel", "--no-plots",
             "--output-root", str(tmp_path / "again")], tmp_path, module="sweeps.analyze")
    assert c.get_run(run.info.run_id).data.tags["symptom"] == "stalled"


def test_swings_that_last_to_the_end_are_not_a_collapse():
    """A loss that falls to the baseline and keeps swinging up to 80% above it to its last epoch
    (by construction) still swings: the baseline excuses only swings that died out (above)."""
    T, base = 200, 0.2
    e = np.arange(T)
    swinging = np.where(e < 60, 1.0 - 0.8 * e / 60, base * (1 + 0.8 * np.abs(np.sin(e / 3.0))))
    d = diagnose(swinging, config={"lr": 1.0, "baseline_loss": base})
    assert d.symptom == "oscillating" and "swings_died_out" not in d.evidence, d.evidence
