"""A classifier stuck at chance, in a script that logs no baseline loss: a ReLU net fed one raw
feature on a large offset scale (a measurement in the hundreds, as in many tabular data sets)
falls from its first loss to what predicting the class frequencies scores, and stays there.
From the curve alone that looks like a loss that fell and converged; the loss it sits at, ln k
for k classes (a little less when they are imbalanced), on the training and the validation set
alike, says the net learned nothing from its inputs: stalled.

Every expectation comes from continuation runs of the plain-torch script in plain_torch.py (not
this project's loop): 10x the epochs never gets 5% below the class frequencies' entropy, while
the same net on standardised inputs gets far below it (the inputs had plenty to teach); or from
analysis (a least-squares fit at its noise floor is done, whatever number that floor is).
"""

from __future__ import annotations

import math

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import run_cli
from plain_torch import minibatch_sgd, split
from sweeps.diagnose import diagnose

CHANCE = 0.05  # within this share of the class frequencies' entropy: nothing learned
T, LR = 30, 0.01


def _blobs(shares: list[float], n: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs in 4-D, one per class (``shares`` of the points each, shuffled); the first
    feature is a raw measurement around 750 with a spread of 300."""
    g = torch.Generator().manual_seed(0)
    y = torch.cat([torch.full((int(round(s * n)),), i) for i, s in enumerate(shares)])
    y = y[torch.randperm(len(y), generator=g)]
    centers = torch.randn(len(shares), 4, generator=g) * 2
    x = centers[y] + torch.randn(len(y), 4, generator=g)
    x[:, 0] = x[:, 0] * 300 + 750
    return x, y


def _run(shares: list[float], normalize: bool, epochs: int) -> tuple[list[float], list[float],
                                                                      float]:
    """(train losses, val losses, the class frequencies' entropy on the training split) of a
    2 x 32 ReLU net trained by minibatch SGD at LR on 300 of the points (100 validate)."""
    x, y = _blobs(shares)
    data = split(x, y, 300, normalize=normalize)
    torch.manual_seed(0)
    k = len(shares)
    net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32),
                              torch.nn.ReLU(), torch.nn.Linear(32, k))
    train, val = minibatch_sgd(net, LR, epochs, 32, data)
    p = torch.bincount(data[1], minlength=k).double() / len(data[1])
    return train, val, float(-(p * p.log()).sum())


CASES = {"2 classes 60/40": [0.6, 0.4], "3 classes": [1 / 3] * 3, "10 classes": [0.1] * 10}


@pytest.mark.parametrize("shares", CASES.values(), ids=CASES.keys())
def test_a_classifier_at_chance_is_stalled_without_a_baseline(shares):
    k = len(shares)
    train, val, entropy = _run(shares, normalize=False, epochs=T)
    # The truth, from continuations: 10x the epochs never gets below the class frequencies ...
    longer, _, _ = _run(shares, normalize=False, epochs=10 * T)
    assert min(longer) >= (1 - CHANCE) * entropy
    # ... while standardised inputs take the same net far below them: nothing was learned.
    learned, _, _ = _run(shares, normalize=True, epochs=T)
    assert learned[-1] < 0.9 * entropy and train[0] > 2 * entropy  # it fell onto chance
    d = diagnose(train, val, config={"lr": LR, "normalize": False})
    assert d.symptom == "stalled", d.evidence
    assert f"ln {k} = " in d.cause and "learned nothing from its inputs" in d.cause
    assert d.evidence["baseline_classes"] == k
    # The fix standardises the inputs first (what took the same net below chance above), also
    # where the raw scale's first steps overshot (3 classes: the loss rose 100x; a 100x lr cut
    # on raw inputs still ends above chance, 1.16 x the entropy, by the same script).
    assert d.fix_str().startswith("normalize: False -> true"), d.fix_str()


@pytest.mark.parametrize("shares", [CASES["2 classes 60/40"], CASES["3 classes"]],
                         ids=["2 classes 60/40", "3 classes"])
def test_a_classifier_that_learned_is_not_at_chance(shares):
    train, val, entropy = _run(shares, normalize=True, epochs=T)
    assert train[-1] < 0.5 * entropy
    d = diagnose(train, val, config={"lr": LR, "normalize": True})
    assert "baseline_classes" not in d.evidence and "learned nothing" not in d.cause


def _regression(noise_var: float) -> tuple[list[float], list[float]]:
    """A line fitted by full-batch gradient descent to 2,000 points of y = 3 x + 0.5 + noise
    (x standard normal), 2,000 more validate: (train losses, val losses), both mean squared
    errors. Least squares' floor is the noise variance, on both splits."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 1, generator=g, dtype=torch.float64)
    y = 3 * x + 0.5 + math.sqrt(noise_var) * torch.randn(4000, 1, generator=g,
                                                          dtype=torch.float64)
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    train, val = [], []
    for _ in range(60):
        with torch.no_grad():
            val.append(float(((x[2000:] * w[0] + w[1] - y[2000:]) ** 2).mean()))
        loss = ((x[:2000] * w[0] + w[1] - y[:2000]) ** 2).mean()
        train.append(float(loss.detach()))
        (grad,) = torch.autograd.grad(loss, w)
        with torch.no_grad():
            w -= 0.3 * grad
    return train, val


def test_a_regression_that_names_its_loss_is_not_read_as_classes():
    """The noise variance is ln 3 to the digit: the fit ends at ln 3 on both splits, which the
    curves alone cannot tell from 3 classes at chance. The run's ``loss`` param says mse: a fit
    at its noise floor (analysis: least squares leaves the noise), far below the targets'
    variance (about 10): healthy."""
    train, val = _regression(math.log(3))
    assert abs(train[-1] / math.log(3) - 1) < 0.03 and abs(val[-1] / train[-1] - 1) < 0.05
    assert train[-1] < 0.2 * train[0]
    d = diagnose(train, val, config={"lr": 0.3, "loss": "MSELoss"})
    assert d.symptom == "healthy", d.evidence
    assert "baseline_classes" not in d.evidence


def test_analyze_names_chance_in_a_scripts_own_store(tmp_path):
    """A store written by plain mlflow calls, no baseline logged: sweeps-analyze says the run
    sits at chance, and tells the fix in the script's own param names."""
    uri = f"sqlite:///{tmp_path / 'theirs.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("digits-like")
    try:
        train, val, _ = _run(CASES["10 classes"], normalize=False, epochs=T)
        with mlflow.start_run(run_name="raw") as run:
            mlflow.log_params({"lr": str(LR), "optimizer": "sgd", "normalize": "False"})
            for step, (a, b) in enumerate(zip(train, val)):
                mlflow.log_metrics({"loss": a, "val_loss": b}, step=step)
    finally:
        mlflow.set_tracking_uri(None)
    run_cli(["--tracking-uri", uri, "--experiment", "digits-like", "--train-metric", "loss",
             "--val-metric", "val_loss", "--no-plots", "--output-root", str(tmp_path / "out")],
            tmp_path, module="sweeps.analyze")
    tags = MlflowClient(uri).get_run(run.info.run_id).data.tags
    assert tags["symptom"] == "stalled"
    assert "ln 10 = 2.303" in tags["cause"] and "learned nothing" in tags["cause"]
    assert "train." not in tags["fix"] and "data.normalize" not in tags["fix"]
    assert tags["fix"].startswith("normalize: False -> True")  # in its own spelling


def _overlapping_raw(opt: str, lr: float, epochs: int) -> tuple[list[float], list[float], float]:
    """(train, val, the class frequencies' entropy) of a linear softmax classifier trained full
    batch by ``opt`` on 400 points of 5 heavily overlapping Gaussian classes in 20 features on
    raw scales from 0.1 to 1,000 (400 more validate): its first logits are in the hundreds."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 5, (800,), generator=g)
    x = (torch.randn(5, 20, generator=g) * 0.3)[y] + torch.randn(800, 20, generator=g)
    x = x * 10.0 ** (torch.rand(20, generator=g) * 4 - 1)
    torch.manual_seed(0)
    net = torch.nn.Linear(20, 5)
    step = {"rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam}[opt](net.parameters(), lr=lr)
    loss, train, val = torch.nn.CrossEntropyLoss(), [], []
    for _ in range(epochs):
        step.zero_grad()
        out = loss(net(x[:400]), y[:400])
        out.backward()
        step.step()
        train.append(float(out.detach()))
        with torch.no_grad():
            val.append(float(loss(net(x[400:]), y[400:])))
    p = torch.bincount(y[:400], minlength=5).double() / 400
    return train, val, float(-(p * p.log()).sum())


def test_a_model_that_levels_off_above_its_baseline_is_stalled():
    """Its loss fell from about 150 and levels off in the single digits: from the curve alone a
    run that converged. Its recorded baseline says a constant prediction scores 1.6, and neither
    10x the epochs nor a 10x lr gets it within 5 % of that (it does worse than ignoring its
    inputs): stalled, inputs on raw scales the likely cause, standardising them the fix."""
    train, val, entropy = _overlapping_raw("rmsprop", 1e-2, 100)
    longer = _overlapping_raw("rmsprop", 1e-2, 1000)[0]
    bolder = _overlapping_raw("rmsprop", 1e-1, 100)[0]
    assert min(train + longer + bolder) > (1 + CHANCE) * entropy  # the truth: stalled
    assert train[-1] < train[0] / 10  # it did fall a long way
    config = {"optimizer": {"name": "rmsprop", "lr": 1e-2},
              "data": {"baseline_loss": entropy, "normalize": False}}
    d = diagnose(train, val, config=config)
    assert d.symptom == "stalled", d
    assert "worse than ignoring its inputs" in d.cause
    assert d.fix[0] == "data.normalize=true"


def test_analyze_says_a_scripts_run_does_worse_than_a_constant(tmp_path):
    """The same run in a store written by plain mlflow calls, no baseline logged: `sweeps-analyze
    --baseline-loss` gives it the class entropy, and the run is stalled, worse than ignoring its
    inputs, with the fix in the script's own param names."""
    train, val, entropy = _overlapping_raw("rmsprop", 1e-2, 100)
    uri = f"sqlite:///{tmp_path / 'theirs.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("raw-features")
    try:
        with mlflow.start_run(run_name="rmsprop") as run:
            mlflow.log_params({"lr": "0.01", "optimizer": "rmsprop", "normalize": "False"})
            for step, (a, b) in enumerate(zip(train, val)):
                mlflow.log_metrics({"loss": a, "val_loss": b}, step=step)
    finally:
        mlflow.set_tracking_uri(None)
    run_cli(["--tracking-uri", uri, "--experiment", "raw-features", "--train-metric", "loss",
             "--val-metric", "val_loss", "--baseline-loss", f"{entropy:.4f}", "--no-plots",
             "--output-root", str(tmp_path / "out")], tmp_path, module="sweeps.analyze")
    tags = MlflowClient(uri).get_run(run.info.run_id).data.tags
    assert tags["symptom"] == "stalled"
    assert "worse than ignoring its inputs" in tags["cause"]
    assert tags["fix"].startswith("normalize: False -> True")


def _radial(d: int, n_train: int, epochs: int) -> tuple[list[float], list[float], float]:
    """A linear classifier (logits w x + b) trained by minibatch Adam (lr 0.01, batches of 32;
    plain_torch's loop) on ``n_train`` standard normal points in ``d`` dimensions labelled by
    whether |x|**2 is above its median (the rule of Hastie et al.'s example 10.2), 1,000 more
    validate: (train losses, val losses, the class frequencies' entropy on the training
    split)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + 1000, d, generator=g)
    y = ((x * x).sum(1) > d - 2 / 3).long()
    xt, yt, xv, yv = split(x, y, n_train, normalize=False)
    torch.manual_seed(0)
    train, val = minibatch_sgd(torch.nn.Linear(d, 2), 0.01, epochs, 32, (xt, yt, xv, yv),
                               optimizer=torch.optim.Adam)
    p = torch.bincount(yt, minlength=2).double() / n_train
    return train, val, float(-(p * p.log()).sum())


def test_a_linear_model_that_only_fits_its_own_points_is_at_chance():
    """The classes depend on |x| alone, so x and -x have the same label: by symmetry and the
    convexity of the cross-entropy in the logit, the best linear logit on the population is a
    constant (analysis): nothing in the inputs is linear. Its 150 training points in 10
    dimensions let it fit a little noise (train ~4 % below ln 2) while val stays at ln 2 and
    above, ~8 % above train: not level with it, yet never below chance, also over 10x the
    epochs. Stalled: it learned nothing from its inputs that holds on points it did not see."""
    train, val, entropy = _radial(10, 150, 30)
    longer_val = _radial(10, 150, 300)[1]
    assert min(val + longer_val) > entropy  # never below chance on held-out points
    assert train[-1] < (1 - 0.03) * entropy and val[-1] / train[-1] > 1 + CHANCE
    d = diagnose(train, val, config={"lr": 0.01, "optimizer": "adam"})
    assert d.symptom == "stalled", d.evidence
    assert d.evidence["baseline_classes"] == 2 and "learned nothing from its inputs" in d.cause
