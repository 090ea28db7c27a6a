"""Check the labeller (sweeps.diagnose) against ground truth derived from first principles, on
every run of a sweep preset (the diagnostic grid by default), and optionally check its fixes.
  python benchmarks/ground_truth.py                 # table, agreement, every disagreement
  python benchmarks/ground_truth.py --verify-fixes  # also: does each prescribed fix heal its run?

Ground truth exists where the model is linear in its parameters (linear, poly: checked, not
assumed). The MSE is then a quadratic with Hessian H = 2/n Phi^T Phi (Phi: the features, bias
column included, of the exact training sample, regenerated with sweeps.data.make_data) whose
floor is the least-squares optimum L* of that sample, and the population loss of any weights is
noise**2 + E_x[(f(x) - slope*x - intercept)**2], integrated exactly over x ~ U(x_low, x_high).
  * SGD (no clipping; any schedule): the exact float64 trajectory of the linear recurrence.
    zero_grad on: e_{t+1} = (I - lr H) e_t; off: the .grad buffer sums every gradient, so
    e_{t+1} = (2 - lr H) e_t - e_{t-1} (heavy ball, beta = 1). It diverges iff the update's
    spectral radius exceeds 1, i.e. lr * lam_max > 2 (on) or > 4 (off).
  * Adam, RMSprop (anything else): the optimizer replayed with the weights recorded, in the run's
    dtype for its epochs (it must reproduce the labelled curve) and in float64 for 10x as many,
    which shows whether the run converges, keeps swinging or grows without bound.
Rules, in the labeller's order (T: the run's epochs, L0: its initial loss):
  diverged     SGD at a constant lr: spectral radius > 1. Others: non-finite within 10 T epochs,
               or the run ends >= GROWTH x L0 and the 10 T run's swings keep growing.
  oscillating  the loss does not settle: in the run's second half it climbs back >= SWING of the
               reducible loss L0 - L* above its running minimum; or (plain SGD) the weights
               still bounce across the minimum: the error left in the modes with lr * lam > 1
               holds >= BOUNCE of the reducible loss.
  overfitting  not stalled, and the population loss ends >= VAL_RISE above its minimum (and by
               >= VAL_MATERIAL of what it fell before it), reached >= max(5, 20% of T) epochs
               before the end while the train loss was at its lowest so far (on its way down,
               not in a swing), and the train loss fell after it.
  stalled      the run removed less than STALL = 1 - 1/e of what 10 T epochs remove, L0 - L_10T
               (with a schedule, also 10 T at its starting lr, or a tenth of it, kept
               constant: annealing that freezes a run early is no excuse): it did not get
               through one time constant of its own decay. A run that only needed more
               epochs (or a larger lr) is stalled, whatever the optimizer; the
               reference is what more time reaches, not L*, which a noisy 10-parameter fit
               only approaches over ~1/(lr * lam_min) epochs (lam_min ~ 1e-9 for the poly).
  healthy      otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from torch import nn

from sweeps.config import register_configs, training_config
from sweeps.data import make_data
from sweeps.diagnose import SYMPTOMS, Diagnosis, diagnose, next_round
from sweeps.config import lr_at
from sweeps.loop import make_optimizer, plain, train
from sweeps.model import build_model

CONF = Path(__file__).resolve().parents[1] / "conf"
PRESET = "diagnostic"

GROWTH = 100.0  # diverged: a non-SGD run ending this many times above its initial loss ...
SWING = 0.1  # oscillating: climbs back this share of the reducible loss in the second half
BOUNCE = 0.05  # oscillating: error energy left in the sign-flipping modes, share of reducible
VAL_RISE = 0.1  # overfitting: population loss ends this share above its minimum ...
VAL_MATERIAL = 0.05  # ... and by this share of what it fell from the start to that minimum
ON_PATH = 0.01  # ... which the train loss passed at (this share of reducible) its lowest so far
STALL = 1 - math.exp(-1)  # stalled: removed less than this share of what 10 T epochs remove
LONG = 10  # the long run: this many times the run's epochs

Row = tuple[list[str], Any, Diagnosis, Optional["Truth"]]


# --- the preset ---------------------------------------------------------------------------------


def grid(preset: str = PRESET, axes: Optional[list[str]] = None) -> list[list[str]]:
    """The override lists of every point of a sweep preset's grid, in Hydra's order; ``axes``
    (``key=v1,v2`` strings) replace the preset's own axes of the same key or add new ones."""
    params = {k: str(v) for k, v in
              OmegaConf.load(CONF / "sweep" / f"{preset}.yaml").hydra.sweeper.params.items()}
    params.update(a.split("=", 1) for a in axes or [])
    choices = [[f"{k}={v.strip()}" for v in vals.split(",")] for k, vals in params.items()]
    return [list(p) for p in itertools.product(*choices)]


def compose_run(overrides: list[str], preset: str = PRESET) -> Any:
    """One grid point's config, on the CPU so the numbers do not depend on the host."""
    return compose("config", overrides=[f"sweep={preset}", "train.device=cpu", *overrides])


def with_fix(overrides: list[str], fix: str) -> list[str]:
    """The overrides with ``fix`` applied: it replaces an override of the same key."""
    key = fix.split("=", 1)[0].lstrip("+~")
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key] + [fix]


def label(cfg: Any) -> tuple[Diagnosis, Any]:
    """Train with the real loop and label the run, as the app does."""
    h = train(cfg)
    return diagnose(h["train_loss"], h["val_loss"], config=training_config(cfg),
                    grad_norm=h["grad_norm"]), h


# --- the quadratic behind a linear-in-parameters model ------------------------------------------


@dataclass
class Problem:
    """The run's MSE as a quadratic: loss(theta) = mean((phi @ theta - y)**2)."""

    phi: np.ndarray  # (n_train, p) features of the training points
    y: np.ndarray
    theta0: np.ndarray  # the initial weights, as the loop draws them
    pop_m: np.ndarray  # E_x[phi phi^T], E_x[phi f*], E_x[f*^2] + noise**2: the population loss
    pop_v: np.ndarray
    pop_c: float

    @property
    def hessian(self) -> np.ndarray:
        return 2.0 / len(self.y) * self.phi.T @ self.phi

    def optimum(self) -> tuple[np.ndarray, float]:
        theta, *_ = np.linalg.lstsq(self.phi, self.y, rcond=None)
        return theta, self.loss(theta[None])[0]

    def loss(self, thetas: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):  # a diverging trajectory overflows to inf: that is fine
            r = thetas @ self.phi.T - self.y
            return np.mean(r * r, axis=1)

    def population(self, thetas: np.ndarray) -> np.ndarray:
        return np.einsum("ti,ij,tj->t", thetas, self.pop_m, thetas) - 2 * thetas @ self.pop_v \
            + self.pop_c


def _features(model: nn.Module, theta0: torch.Tensor, x: torch.Tensor, theta: torch.Tensor = None):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]

    def out(th: torch.Tensor) -> torch.Tensor:
        parts, i = {}, 0
        for n, s in zip(names, shapes):
            k = math.prod(s)
            parts[n] = th[i: i + k].reshape(s)
            i += k
        return torch.func.functional_call(model, parts, (x,)).reshape(-1)

    if theta is not None:
        return out(theta)
    return torch.autograd.functional.jacobian(out, theta0)


def linear_problem(cfg: Any) -> Optional[Problem]:
    """The run's quadratic when its model is linear in its parameters: the Jacobian of the
    outputs, which must reproduce the outputs at random weights. None otherwise (mlp)."""
    c = plain(cfg)
    torch.manual_seed(c.train.seed)  # as the loop does: an init may draw from the global RNG
    data = make_data(c.data, c.train.seed, torch.float64)
    model = build_model(c.model).double()
    theta0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    phi = _features(model, theta0, data.x_train)
    probe = torch.randn(len(theta0), generator=torch.Generator().manual_seed(1),
                        dtype=torch.float64)
    if not torch.allclose(_features(model, theta0, data.x_train, probe), phi @ probe,
                          rtol=1e-9, atol=1e-9):
        return None
    # Population: Gauss-Legendre nodes on [x_low, x_high] integrate the polynomials exactly.
    d = c.data
    nodes, weights = np.polynomial.legendre.leggauss(64)
    x = (d.x_low + d.x_high) / 2 + (d.x_high - d.x_low) / 2 * nodes
    w = weights / 2
    xf = torch.tensor(x, dtype=torch.float64)[:, None]
    if d.normalize:  # the loop sees x standardised with the training sample's statistics
        raw = make_data(SimpleNamespace(**{**vars(d), "normalize": False}), c.train.seed,
                        torch.float64).x_train
        xf = (xf - raw.mean()) / raw.std().clamp_min(1e-12)
    f = _features(model, theta0, xf).numpy()
    target = d.slope * x + d.intercept
    return Problem(phi.numpy(), data.y_train.reshape(-1).numpy(), theta0.numpy(),
                   f.T @ (w[:, None] * f), f.T @ (w * target),
                   float(w @ target**2 + d.noise**2))


# --- trajectories -------------------------------------------------------------------------------


def sgd_exact(p: Problem, cfg: Any, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact float64 SGD on the quadratic with torch.optim.SGD's semantics (momentum, weight
    decay; zero_grad off: the .grad buffer holds the sum of all gradients so far).
    Returns the train loss of each epoch (before its step) and the weights after each step."""
    c = plain(cfg)
    opt, tc = c.optimizer, c.train
    H, b = p.hessian, 2.0 / len(p.y) * p.phi.T @ p.y
    theta, acc, buf = p.theta0.copy(), np.zeros_like(p.theta0), None
    before, after = [], []
    with np.errstate(all="ignore"):
        for epoch in range(epochs):
            before.append(theta)
            g = H @ theta - b
            acc = g if tc.zero_grad else acc + g
            step = acc + opt.weight_decay * theta
            if opt.momentum:
                buf = step.copy() if buf is None else opt.momentum * buf + step
                step = buf
            theta = theta - lr_at(epoch, opt.lr, tc) * step
            after.append(theta)
            if not np.all(np.isfinite(theta)):
                break
    return p.loss(np.array(before)), np.array(after)


def sgd_update_matrix(p: Problem, cfg: Any) -> np.ndarray:
    """One constant-lr SGD epoch as a linear map of (weights, grad buffer, momentum buffer),
    data term dropped: its spectral radius decides whether the run can diverge."""
    c = plain(cfg)
    opt, tc = c.optimizer, c.train
    H, k = p.hessian, len(p.theta0)
    cols = []
    for j in range(3 * k):
        s = np.eye(3 * k)[j]
        theta, acc, buf = s[:k], s[k:2 * k], s[2 * k:]
        acc = H @ theta if tc.zero_grad else acc + H @ theta
        step = acc + opt.weight_decay * theta
        buf = opt.momentum * buf + step if opt.momentum else np.zeros(k)
        cols.append(np.r_[theta - opt.lr * (buf if opt.momentum else step), acc, buf])
    return np.array(cols).T


def replay(cfg: Any, epochs: int, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The loop's steps (zero_grad flag, clipping, schedule, any optimizer) in ``dtype``, with
    the weights recorded. Returns the train loss per epoch and the weights after each step."""
    c = plain(cfg)
    tc = c.train
    torch.manual_seed(tc.seed)
    data = make_data(c.data, tc.seed, dtype)
    model = build_model(c.model).to(dtype=dtype)
    opt = make_optimizer(model.parameters(), c.optimizer)
    criterion = nn.MSELoss()
    max_norm = tc.clip_grad_norm if tc.clip_grad_norm is not None else math.inf
    losses, thetas = [], []
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = lr_at(epoch, c.optimizer.lr, tc)
        if tc.zero_grad:
            opt.zero_grad()
        loss = criterion(model(data.x_train), data.y_train)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        opt.step()
        losses.append(float(loss.detach()))
        thetas.append(torch.cat([q.detach().reshape(-1) for q in model.parameters()]).double())
        if not (math.isfinite(losses[-1]) and bool(torch.isfinite(thetas[-1]).all())):
            break
    return np.array(losses), torch.stack(thetas).numpy()


# --- ground truth -------------------------------------------------------------------------------


@dataclass
class Truth:
    symptom: str
    why: str
    measures: dict[str, float] = field(default_factory=dict)


def ground_truth(cfg: Any, history: Any = None) -> Optional[Truth]:
    """The label theory (or the exact dynamics) gives a run; None where it cannot be derived.
    ``history``, when given, is the labelled run: a replay must reproduce its train loss."""
    p = linear_problem(cfg)
    c = plain(cfg)
    if p is None or c.train.early_stop:
        return None  # not a quadratic, or a window cut by early stopping: not derived here
    T = c.train.epochs
    _, l_star = p.optimum()
    lam = np.linalg.eigvalsh(p.hessian)
    m: dict[str, float] = {"lr_lam_max": c.optimizer.lr * lam[-1], "L_star": l_star}
    exact = c.optimizer.name in ("sgd", "momentum") and c.train.clip_grad_norm is None
    constant = c.train.lr_schedule == "constant"

    def run(cfg_: Any, epochs: int, dtype: torch.dtype = torch.float64):
        return sgd_exact(p, cfg_, epochs) if exact else replay(cfg_, epochs, dtype)

    tr, th = run(cfg, T, torch.float64 if c.train.dtype == "float64" else torch.float32)
    if not exact and history is not None and len(history["train_loss"]) == len(tr):
        assert np.allclose(tr, history["train_loss"], rtol=1e-5, atol=1e-12, equal_nan=True)
    tr_long, _ = run(cfg, LONG * T)
    # A schedule that anneals the lr away can freeze a run whatever its length: the reference
    # is then also what its starting lr, or a tenth of it (if that one is unstable), kept
    # constant, reaches in 10 T epochs.
    tr_ref = tr_long if constant else np.concatenate([tr_long, *(run(OmegaConf.merge(
        cfg, {"train": {"lr_schedule": "constant"}, "optimizer": {"lr": c.optimizer.lr * f}}),
        LONG * T)[0] for f in (1.0, 0.1))])
    l0 = float(tr[0])
    reducible = l0 - l_star
    m["L0"] = l0

    # diverged
    if exact and constant:
        rho = float(np.max(np.abs(np.linalg.eigvals(sgd_update_matrix(p, cfg)))))
        m["spectral_radius"] = rho
        if rho > 1 + 1e-9:
            limit = 2 if c.train.zero_grad and not c.optimizer.momentum else "its limit"
            return Truth("diverged", f"spectral radius {rho:.4g} > 1: lr*lam_max = "
                         f"{m['lr_lam_max']:.3g} > {limit}", m)
    if not np.all(np.isfinite(tr)) or not np.all(np.isfinite(tr_long)):
        return Truth("diverged", "non-finite within the run" if not np.all(np.isfinite(tr))
                     else f"non-finite within {LONG}x the epochs", m)
    if not (exact and constant):
        growing = float(np.max(tr_long[-T:])) >= float(np.max(tr_long[:T]))
        m["end_over_L0"] = float(tr[-1]) / l0
        if tr[-1] >= GROWTH * l0 and growing:
            return Truth("diverged", f"ends {tr[-1] / l0:.3g} x L0, swings still growing at "
                         f"{LONG}x the epochs", m)

    # oscillating
    half = tr[len(tr) // 2:]
    swing = float(np.max(half - np.minimum.accumulate(half))) / reducible
    m["swing"] = swing
    if swing >= SWING:
        why = f"the loss climbs back {swing:.3g} of the reducible loss in the 2nd half"
        if not exact and float(np.max(tr_long[-T:])) < float(np.max(tr_long[:T])):
            why += f" (bounded: smaller swings at {LONG}x the epochs)"
        return Truth("oscillating", why, m)
    if exact and constant and c.train.zero_grad and not c.optimizer.momentum:
        theta_star, _ = p.optimum()
        lam_i, q = np.linalg.eigh(p.hessian)
        e = q.T @ (th[-1] - theta_star)
        flips = c.optimizer.lr * lam_i > 1
        m["bounce"] = float(np.sum(lam_i[flips] / 2 * e[flips] ** 2)) / reducible
        if m["bounce"] >= BOUNCE:
            return Truth("oscillating", f"the weights still bounce across the minimum "
                         f"({m['bounce']:.3g} of the reducible loss)", m)

    # how much of what more time removes
    l_long = float(np.nanmin(tr_ref))
    removed = (l0 - float(tr[-1])) / max(l0 - l_long, 1e-300)
    m.update(removed_of_10T=removed, removed_of_LS=(l0 - float(tr[-1])) / reducible)

    # overfitting: the population loss (not one val sample) turns up while train falls
    pop = p.population(th)
    i = int(np.argmin(pop))
    rise = float(pop[-1] - pop[i])
    m.update(pop_min_epoch=i, pop_rise=rise / pop[i])
    before = float(p.population(p.theta0[None])[0]) - float(pop[i])
    on_path = tr[min(i + 1, len(tr) - 1)] <= np.min(tr[:i + 2]) + ON_PATH * reducible
    if removed >= STALL and rise >= max(VAL_RISE * pop[i], VAL_MATERIAL * before) and on_path \
            and len(pop) - 1 - i >= max(5, 0.2 * T) and tr[-1] < tr[min(i + 1, len(tr) - 1)]:
        return Truth("overfitting", f"population loss up {rise / pop[i]:.1%} after its minimum "
                     f"at epoch {i} while train falls", m)
    if removed < STALL:
        return Truth("stalled", f"removed {removed:.2f} of what {LONG}x the epochs remove", m)
    return Truth("healthy", f"removed {removed:.2f} of what {LONG}x the epochs remove, "
                 "settled", m)


# --- report -------------------------------------------------------------------------------------


def _name(ov: list[str]) -> str:
    return " ".join(o.split("=", 1)[1] for o in ov)


def report(rows: list[Row], verbose: bool = False) -> str:
    """The per-run table, the confusion counts, the agreement rate and every disagreement."""
    head = "run (" + " ".join(o.split("=", 1)[0] for o in rows[0][0]) + ")"
    lines = [f"{head:78s} {'truth':12s}{'label':12s}"]
    for ov, _, d, t in rows:
        mark = "" if t is None or t.symptom == d.symptom else "  <-- differs"
        lines.append(f"{_name(ov):78s} {t.symptom if t else '-':12s}{d.symptom:12s}{mark}")
        if verbose and t:
            lines.append("    " + " ".join(f"{k}={v:.3g}" for k, v in t.measures.items())
                         + f" | label: removed={d.evidence.get('removed_share')} "
                         f"floor={d.evidence.get('floor')} tail={d.evidence.get('tail_ratio')}")
    derived = [(ov, d, t) for ov, _, d, t in rows if t is not None]
    agree = sum(t.symptom == d.symptom for _, d, t in derived)
    pairs = Counter((t.symptom, d.symptom) for _, d, t in derived)
    lines += ["", "counts (rows: ground truth, columns: label)",
              f"{'':13s}" + "".join(f"{s:>12s}" for s in SYMPTOMS) + f"{'total':>8s}"]
    for s in SYMPTOMS:
        lines.append(f"{s:13s}" + "".join(f"{pairs[(s, x)]:12d}" for x in SYMPTOMS)
                     + f"{sum(pairs[(s, x)] for x in SYMPTOMS):8d}")
    lines.append(f"\nagreement: {agree}/{len(derived)} = {agree / max(len(derived), 1):.1%}"
                 f" ({len(rows) - len(derived)} runs without ground truth)")
    bad = [(ov, d, t) for ov, d, t in derived if t.symptom != d.symptom]
    if bad:
        lines.append("disagreements:")
        lines += [f"  {_name(ov)}: truth {t.symptom} ({t.why}); label {d.symptom} "
                  f"(removed_share {d.evidence.get('removed_share')})" for ov, d, t in bad]
    return "\n".join(lines)


def verify_fixes(rows: list[Row], preset: str, truth: bool = False, rounds: int = 1) -> str:
    """Re-run every unhealthy run with its prescribed fix applied (every override of it,
    together) and count, per symptom, how many the labeller then calls healthy (and, with
    ``truth``, how many the ground truth does); list the others with what they became. With
    ``rounds`` 2, a rerun still unhealthy gets its own prescribed fix on top, once (its lr
    bracketed by round 1's: next_round)."""
    per: dict[str, list[int]] = {}
    misses = []
    became: Counter = Counter()
    second = [0, 0]  # healed in round 2, tried in round 2
    for ov, _, d, _ in rows:
        if d.symptom == "healthy" or not d.fix:
            continue
        fixed = list(ov)
        for override in d.fix:
            fixed = with_fix(fixed, override)
        cfg = compose_run(fixed, preset)
        new, h = label(cfg)
        t = ground_truth(cfg, h) if truth else None
        tally = per.setdefault(d.symptom, [0, 0, 0, 0, 0])
        tally[0] += new.symptom == "healthy"
        tally[1] += 1
        tally[2] += t is not None and t.symptom == "healthy"
        tally[3] += t is not None
        if rounds >= 2 and new.symptom != "healthy" and new.fix:
            lr = compose_run(list(ov), preset).optimizer.lr
            for override in next_round(lr, d.fix, new.fix):
                fixed = with_fix(fixed, override)
            new2, _ = label(compose_run(fixed, preset))
            second[1] += 1
            if new2.symptom == "healthy":
                second[0] += 1
                tally[4] += 1
                continue
            new = new2
        if new.symptom != "healthy":
            became[(d.symptom, new.symptom)] += 1
        if new.symptom != "healthy" or (t is not None and t.symptom != "healthy"):
            misses.append(f"  {_name(ov)} ({d.symptom}) + {d.fix_str()} -> {new.symptom}"
                          + (f" (truth: {t.symptom})" if t else ""))
    total = [sum(v[k] for v in per.values()) for k in range(5)]
    lines = ["", "verify-fixes: every unhealthy run re-run with its prescribed fix (all overrides)"
             + (" (labeller; ground truth)" if truth else "")]
    for s, v in [*((s, per[s]) for s in SYMPTOMS if s in per), ("overall", total)]:
        line = f"  {s:12s} {v[0]:3d}/{v[1]:<3d} healthy ({v[0] / max(v[1], 1):.0%})"
        if truth:
            line += f";  {v[2]:3d}/{v[3]:<3d} truly healthy ({v[2] / max(v[3], 1):.0%})"
        if rounds >= 2:
            line += (f";  after round 2: {v[0] + v[4]:3d}/{v[1]:<3d} "
                     f"({(v[0] + v[4]) / max(v[1], 1):.0%})")
        lines.append(line)
    if rounds >= 2:
        lines.append(f"  round 2: {second[0]}/{second[1]} reruns healed by their own fix")
    if truth:
        lines.append("  (truth: none for reruns with early stopping, whose window val decides)")
    if became:
        lines.append("  not healed, became: " + ", ".join(
            f"{a} -> {b}: {n}" for (a, b), n in sorted(became.items())))
    if misses:
        lines += ["not healed (by the labeller, or by the ground truth):", *misses]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default=PRESET, help="sweep preset under conf/sweep/")
    ap.add_argument("--verify-fixes", action="store_true",
                    help="re-run each unhealthy run with its prescribed fix; count how many heal")
    ap.add_argument("--axis", action="append", default=[], metavar="KEY=V1,V2",
                    help="replace or add a grid axis (repeatable), e.g. --axis train.epochs=50,500")
    ap.add_argument("--no-truth", action="store_true", help="skip the ground truth (faster)")
    ap.add_argument("--rounds", type=int, default=1, choices=(1, 2),
                    help="with --verify-fixes: a rerun not healed gets its own fix (2 rounds)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each run's measures")
    args = ap.parse_args(argv)

    register_configs()
    GlobalHydra.instance().clear()
    torch.set_num_threads(1)  # tiny full-batch steps: thread hand-offs cost more than they save
    start = time.perf_counter()
    rows: list[Row] = []
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            for ov in grid(args.preset, args.axis):
                cfg = compose_run(ov, args.preset)
                d, h = label(cfg)
                rows.append((ov, cfg, d, None if args.no_truth else ground_truth(cfg, h)))
            print(report(rows, args.verbose))
            print(f"({len(rows)} runs in {time.perf_counter() - start:.0f} s)")
            if args.verify_fixes:
                print(verify_fixes(rows, args.preset, truth=not args.no_truth,
                                   rounds=args.rounds))
    finally:
        GlobalHydra.instance().clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
