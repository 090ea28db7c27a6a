"""sweeps-analyze on the ways other scripts log their curves with plain MLflow calls: without a
step (``mlflow.log_metric``'s step defaults to 0, so every epoch lands on step 0), and the train
and validation losses at different frequencies on one step axis (Lightning's global step: train
every few batches, validation once an epoch), and validation every 5th epoch only. They used to
reach the labeller as one point, as a train loss without its validation curve, or as a NaN
taken for a blow-up.

The expectations come from how each curve was built (analysis), not from the labeller."""

from __future__ import annotations

from contextlib import contextmanager

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import run_cli


@contextmanager
def _store(tmp_path, experiment: str):
    """Someone's script logging into a fresh SQLite store: yields its uri."""
    uri = f"sqlite:///{tmp_path / 'theirs.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(None)


def _cli(tmp_path, uri: str, *flags: str, env: dict | None = None, check: bool = True):
    """sweeps-analyze on the store at ``uri``, without plots, writing under tmp_path/out."""
    return run_cli(["--tracking-uri", uri, "--no-plots", *flags,
                    "--output-root", str(tmp_path / "out")], tmp_path, module="sweeps.analyze",
                   env=env, check=check)


def _analyse(tmp_path, uri: str, experiment: str, env: dict | None = None) -> None:
    _cli(tmp_path, uri, "--experiment", experiment, "--train-metric", "loss",
         "--val-metric", "val_loss", env=env)


# the bulk path (sqlite3 on the store) and MLflow's client, which a server or another store gets
@pytest.mark.parametrize("env", [None, {"SWEEPS_PLAIN_LOGGING": "1"}], ids=["bulk", "client"])
def test_curves_logged_without_a_step_are_read_in_the_order_logged(tmp_path, env):
    with _store(tmp_path, "no-steps") as uri:
        ids = {}
        # healthy: loss - floor shrinks by 0.9 an epoch, to 2e-4 of its start in 80 epochs;
        # stalled: a straight line that removed 8 % of its start and is still falling as fast
        for name, curve in (("healthy", [0.05 + 0.9**e for e in range(80)]),
                            ("stalled", [1.0 - 0.001 * e for e in range(80)])):
            with mlflow.start_run(run_name=name) as run:
                mlflow.log_param("learning_rate", "0.001")
                for loss in curve:
                    mlflow.log_metric("loss", loss)  # no step: every value at step 0
                    mlflow.log_metric("val_loss", 1.1 * loss)
            ids[name] = run.info.run_id
    _analyse(tmp_path, uri, "no-steps", env)
    c = MlflowClient(uri)
    for name, run_id in ids.items():
        tags = c.get_run(run_id).data.tags
        assert tags["symptom"] == name, tags.get("cause")
        assert "Too few epochs" not in tags.get("cause", "")


def test_validation_once_an_epoch_beside_a_train_loss_every_ten_steps(tmp_path):
    """Train loss every 10 global steps, validation once an epoch of 100 steps, at step 95 of
    each (never a step the train loss has). By construction the run overfits: train falls with
    a time constant of 8 epochs, removing about half its loss after val's minimum (epoch 7),
    while val climbs from there in a straight line to the end, from 0.28 to 0.69, far beyond
    any jitter (there is none)."""
    with _store(tmp_path, "lightning-like") as uri:
        with mlflow.start_run(run_name="overfits") as run:
            mlflow.log_params({"learning_rate": "0.01", "max_epochs": "30"})
            for step in range(0, 3000, 10):
                e = step / 100
                mlflow.log_metric("loss", 0.05 + 2.718 ** (-e / 8), step=step)
            for epoch in range(30):
                val = 0.25 + 2.718 ** (-epoch / 2) + 0.02 * max(epoch - 7, 0)
                mlflow.log_metric("val_loss", val, step=100 * epoch + 95)
        run_id = run.info.run_id
    _analyse(tmp_path, uri, "lightning-like")
    tags = MlflowClient(uri).get_run(run_id).data.tags
    assert tags["symptom"] == "overfitting", tags.get("cause")
    assert "early stopping" in tags["fix"]


def test_a_script_that_evaluates_every_five_epochs(tmp_path):
    """Train loss every epoch, val every 5th (NaN between, as the frame reads it). The train
    loss is gradient descent on a quadratic well inside the stable range (loss - floor shrinks
    by 0.9 an epoch, to 1e-4 of its start in 90 epochs) and val follows it 10 % above: by
    analysis, a healthy run. It used to be labelled diverged (a NaN taken for a blow-up)."""
    with _store(tmp_path, "every5") as uri:
        with mlflow.start_run(run_name="every5") as run:
            mlflow.log_params({"lr": "0.05", "epochs": "90"})
            for epoch in range(90):
                loss = 0.05 + 0.9**epoch
                mlflow.log_metric("loss", loss, step=epoch)
                if epoch % 5 == 4:
                    mlflow.log_metric("val_loss", 1.1 * loss, step=epoch)
        run_id = run.info.run_id
    _analyse(tmp_path, uri, "every5")
    tags = MlflowClient(uri).get_run(run_id).data.tags
    assert tags["symptom"] == "healthy", tags.get("cause")


def _keras_like(tmp_path) -> tuple[str, dict[str, str]]:
    """Keras' names, ``loss`` and ``val_loss``: a healthy run (loss - floor shrinks by 0.9 an
    epoch) and a stalled one (a straight line, 5 % of its start removed and falling as fast)."""
    ids = {}
    with _store(tmp_path, "keras") as uri:
        for name, curve in (("healthy", [0.05 + 0.9**e for e in range(60)]),
                            ("stalled", [1.0 - 0.001 * e for e in range(60)])):
            with mlflow.start_run(run_name=name) as run:
                mlflow.log_param("learning_rate", "0.001")
                for epoch, loss in enumerate(curve):
                    mlflow.log_metrics({"loss": loss, "val_loss": 1.1 * loss}, step=epoch)
            ids[name] = run.info.run_id
    return uri, ids


def test_the_loss_is_found_under_its_common_names(tmp_path):
    uri, ids = _keras_like(tmp_path)
    proc = _cli(tmp_path, uri, "--experiment", "keras")
    assert "read metric 'loss' as the training loss" in proc.stdout
    c = MlflowClient(uri)
    for name, run_id in ids.items():
        assert c.get_run(run_id).data.tags["symptom"] == name
    # the table and plots read the lr under its name too (``learning_rate``)
    table = pd.read_csv(tmp_path / "out" / "keras" / "analysis" / "labels.csv")
    assert set(table["lr"]) == {0.001}


@pytest.mark.parametrize("flag", ["--train-metric", "--val-metric"])
def test_a_metric_no_run_logged_is_a_clear_error_and_writes_nothing(tmp_path, flag):
    uri, ids = _keras_like(tmp_path)
    proc = _cli(tmp_path, uri, "--experiment", "keras", flag, "los", check=False)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert f"{flag}='los'" in line and "loss, val_loss" in line
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("keras")
    runs = c.search_runs([exp.experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted(ids.values())  # no analysis run
    assert not any("symptom" in r.data.tags for r in runs)


def test_a_val_logged_more_often_than_the_train_loss_is_read_at_the_train_steps(tmp_path):
    """Train loss every 5th epoch, val every epoch: the frame pairs each train value with the
    val logged at that same step, not with a later one."""
    from sweeps.frames import histories_frame

    with _store(tmp_path, "dense-val") as uri:
        with mlflow.start_run() as run:
            for epoch in range(40):
                if epoch % 5 == 0:
                    mlflow.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
                mlflow.log_metric("val_loss", 2.0 / (epoch + 1), step=epoch)
    frame = histories_frame(uri, [run.info.run_id], "loss", "val_loss")
    assert frame["epoch"].tolist() == list(range(0, 40, 5))
    assert frame["val_loss"].tolist() == [2.0 / (e + 1) for e in range(0, 40, 5)]


def _noisy_labels_mlp(epochs: int = 60) -> tuple[list[float], list[float], list[float]]:
    """Someone's plain-torch script: a tanh MLP (64 units) on 300 points of a 4-class linear
    teacher in 20 Gaussian features, 20 % of the labels redrawn at random, SGD at lr 0.5 on
    shuffled minibatches of 50. (each minibatch's loss, the train set's loss after each epoch,
    the val set's (400 points) after each epoch)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(700, 20, generator=g)
    y = (x @ torch.randn(20, 4, generator=g)).argmax(1)
    y = torch.where(torch.rand(700, generator=g) < 0.2, torch.randint(0, 4, (700,), generator=g), y)
    xt, yt, xv, yv = x[:300], y[:300], x[300:], y[300:]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.Tanh(), torch.nn.Linear(64, 4))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    ce = torch.nn.functional.cross_entropy
    batches, train, val = [], [], []
    for _ in range(epochs):
        for idx in torch.randperm(300, generator=g).split(50):
            opt.zero_grad()
            loss = ce(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            batches.append(float(loss.detach()))
        with torch.no_grad():
            train.append(float(ce(net(xt), yt)))
            val.append(float(ce(net(xv), yv)))
    return batches, train, val


def test_a_real_run_logged_the_lightning_way_keeps_its_validation_curve(tmp_path):
    """The minibatch loss every 3rd global step and the val loss once an epoch, at the epoch's
    last step (6 steps an epoch): the val steps are never train steps. By the per-epoch curves
    (the truth's definition) the run overfits; read with its val curve, so is it labelled."""
    batches, train, val = _noisy_labels_mlp()
    best = int(np.argmin(val))
    assert 0 < best < 30 and val[-1] >= 1.2 * val[best]  # val turned up well before the end
    assert train[best] - train[-1] >= 0.2 * (train[0] - min(train))  # while train kept falling
    with _store(tmp_path, "lightning-real") as uri:
        with mlflow.start_run() as run:
            mlflow.log_param("learning_rate", "0.5")
            for step in range(0, len(batches), 3):
                mlflow.log_metric("loss", batches[step], step=step)
            for epoch, v in enumerate(val):
                mlflow.log_metric("val_loss", v, step=6 * epoch + 5)
    _analyse(tmp_path, uri, "lightning-real")
    assert MlflowClient(uri).get_run(run.info.run_id).data.tags["symptom"] == "overfitting"


def test_verify_fixes_says_another_scripts_runs_cannot_be_rerun(tmp_path):
    """--verify-fixes re-runs this tool's runs with their fix; a run another script logged has no
    overrides to re-run. The report says so (it said 'no unhealthy run'), and nothing is run."""
    uri, ids = _keras_like(tmp_path)  # one of them stalled by construction
    proc = _cli(tmp_path, uri, "--experiment", "keras", "--verify-fixes")
    assert "the 1 unhealthy run(s) were logged by another script" in proc.stdout
    assert "no unhealthy run" not in proc.stdout
    c = MlflowClient(uri)
    runs = c.search_runs([c.get_experiment_by_name("keras").experiment_id])
    assert not any("sweeps.fixes" in r.data.tags for r in runs)  # no rerun was made


def test_an_experiment_name_not_in_the_store_lists_the_ones_there(tmp_path):
    uri, _ = _keras_like(tmp_path)
    for flags in (["--experiment", "kera"], []):  # a typo; no name, and no sweep in the store
        proc = _cli(tmp_path, uri, *flags, check=False)
        assert proc.returncode == 2
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith("error: --experiment=") and line.endswith("experiments: Default, keras")
