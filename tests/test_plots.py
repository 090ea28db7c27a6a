"""plots.py on small synthetic runs/histories frames: files are valid images, facets and colours
follow the data, map cells carry the right symptom and loss, and edge cases do not crash."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from PIL import Image

from sweeps import plots
from sweeps.plots import SYMPTOM_COLORS

OPTS, LRS, NOISES, ZGS = ("sgd", "momentum", "adam"), (0.003, 0.03, 0.3), (0.1, 1.0), (True, False)
EPOCHS = 60


def _symptom(opt: str, lr: float, noise: float, zg: bool) -> str:
    if lr == 0.3 and not zg:
        return "diverged"
    if opt == "sgd" and lr == 0.003:
        return "stalled"
    if opt == "momentum" and lr == 0.3:
        return "oscillating"
    if opt == "adam" and lr == 0.03 and noise == 1.0:
        return "overfitting"
    return "healthy"


def _curves(symptom: str, lr: float, noise: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    e = np.arange(EPOCHS, dtype=float)
    floor = noise**2
    train = floor + 4.0 * np.exp(-e * lr * 5)
    val = train * 1.1
    if symptom == "stalled":
        train = 4.0 - 0.001 * e
        val = train
    elif symptom == "oscillating":
        train = floor + 2.0 * (1 + 0.8 * np.sin(e)) * np.exp(-e / 80)
        val = train * 1.05
    elif symptom == "overfitting":
        val = floor + 4.0 * np.exp(-e * 0.15) + 0.002 * (e - 20).clip(0) ** 2
        train = floor * 0.5 + 4.0 * np.exp(-e * 0.15)
    elif symptom == "diverged":
        train = 4.0 * 3.0 ** e
        stop = 25 + k % 3
        train[stop:] = (np.inf, np.nan, 1e308)[k % 3]
        train, val = train[: stop + 1], train[: stop + 1] * 1.1
    return train, val


def make_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """3 optimizers x 3 lrs x 2 noise levels x 2 zero_grad settings, one linear model."""
    runs, hist = [], []
    k = 0
    for opt in OPTS:
        for lr in LRS:
            for noise in NOISES:
                for zg in ZGS:
                    s = _symptom(opt, lr, noise, zg)
                    train, val = _curves(s, lr, noise, k)
                    rid = f"r{k:03d}"
                    runs.append(dict(run_id=rid, name=f"{opt}-{lr}-{noise}-{zg}", optimizer=opt,
                                     lr=lr, noise=noise, zero_grad=zg, model="linear", symptom=s,
                                     final_train_loss=train[-1], final_val_loss=val[-1],
                                     epochs_run=len(train), seed=0))
                    hist.append(pd.DataFrame(dict(run_id=rid, epoch=np.arange(len(train)),
                                                  train_loss=train, val_loss=val)))
                    k += 1
    return pd.DataFrame(runs), pd.concat(hist, ignore_index=True)


@pytest.fixture(scope="module")
def frames():
    return make_frames()


def _png(path):
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100
    return path


def _data_axes(fig):
    return [ax for ax in fig.axes if ax.axison]


def test_symptom_colors_cover_every_symptom():
    for s in ("healthy", "diverged", "stalled", "oscillating", "overfitting", "unlabeled"):
        assert s in SYMPTOM_COLORS
    assert len(set(SYMPTOM_COLORS.values())) == len(SYMPTOM_COLORS)


@pytest.mark.parametrize("value, text", [
    (3.2e-4, "3.2e-4"), (0.12, "0.12"), (2.5, "2.5"), (1500.0, "1.5e3"), (0.0, "0"),
    (float("nan"), "nan"), (float("inf"), "inf"), (1e308, "inf"),
])
def test_fmt_loss(value, text):
    assert plots.fmt_loss(value) == text


@pytest.mark.parametrize("lr, text", [(0.001, "1e-3"), (0.03, "3e-2"), (0.25, "2.5e-1"),
                                      (1.5, "1.5e0"), (float("nan"), "-")])
def test_fmt_lr(lr, text):
    assert plots.fmt_lr(lr) == text


def _runs_drawn(ax):
    """(run id, colour, line style) of each run's line in a loss-curve panel: one
    LineCollection per panel, its urls naming the runs."""
    (coll,) = [c for c in ax.collections if c.get_gid() == "runs"] or [None]
    if coll is None:
        return []
    return list(zip(coll.get_urls(), coll.get_colors(), coll.get_linestyles()))


def test_loss_curves_facets_and_colours(frames, tmp_path):
    runs, hist = frames
    figs = plots.loss_curves(runs, hist)
    assert list(figs) == ["linear"]
    fig = figs["linear"]
    axes = _data_axes(fig)
    assert len(axes) == len(OPTS) * len(ZGS)
    by_id = runs.set_index("run_id")
    drawn = [d for ax in axes for d in _runs_drawn(ax)]
    assert sorted(rid for rid, _, _ in drawn) == sorted(runs["run_id"])  # every run, once
    for rid, color, _ in drawn:
        assert to_hex(color) == SYMPTOM_COLORS[by_id.loc[rid, "symptom"]].lower()
    # noise is the line style: solid for the first level, dashed for the second
    dashes = {n: {str(ls[1]) for rid, _, ls in drawn if by_id.loc[rid, "noise"] == n} for n in NOISES}
    assert dashes[NOISES[0]] == {"None"} and len(dashes[NOISES[1]]) == 1
    assert dashes[NOISES[1]] != {"None"}
    # one "x" per diverged run, on top of the axis
    marks = [c for ax in axes for c in ax.collections if c.get_gid() == "blowups"]
    assert sum(len(c.get_offsets()) for c in marks) == (runs["symptom"] == "diverged").sum()
    top = axes[0].get_ylim()[1]
    assert all(0.3 * top < y < top for c in marks for _, y in c.get_offsets())
    # every facet's title names its optimizer and zero_grad; lr labels at the right edge, each
    # with a leader line back to its curve
    titles = {ax.get_title() for ax in axes}
    assert "sgd · zero_grad=True" in titles and "adam · zero_grad=False" in titles
    assert any(t.get_text() == "3e-3" for t in axes[0].texts)
    (leaders,) = [c for c in axes[0].collections if c.get_gid() == "lr-leaders"]
    assert len(leaders.get_segments()) == len(axes[0].texts)
    _png(plots.save(fig, tmp_path / "curves" / "linear.png"))


def test_loss_curves_one_figure_per_model(frames):
    runs, hist = frames
    runs = runs.assign(model=np.where(runs["optimizer"] == "adam", "mlp", "linear"))
    figs = plots.loss_curves(runs, hist, metric="val_loss")
    assert sorted(figs) == ["linear", "mlp"]
    assert len(_data_axes(figs["mlp"])) == 1 * len(ZGS)


def test_symptom_map_cells(frames, tmp_path):
    runs, _ = frames
    figs = plots.symptom_map(runs)
    fig = figs["linear"]
    axes = _data_axes(fig)
    assert len(axes) == len(NOISES) * len(ZGS)
    # panel rows = zero_grad (True first), columns = noise ascending
    assert axes[0].get_title() == "noise=0.1 · zero_grad=True"
    assert axes[3].get_title() == "noise=1.0 · zero_grad=False"
    ax = axes[0]
    cells = {p.get_gid(): p for p in ax.patches}
    assert len(cells) == len(OPTS) * len(LRS)
    for opt in OPTS:
        for lr in LRS:
            want = SYMPTOM_COLORS[_symptom(opt, lr, 0.1, True)]
            assert to_hex(cells[f"{opt}|{lr}"].get_facecolor()) == want.lower()
    # the sgd / lr=0.003 cell (top-left) reads its final train loss
    row = runs[(runs.optimizer == "sgd") & (runs.lr == 0.003) & (runs.noise == 0.1)
               & runs.zero_grad]
    text = next(t for t in ax.texts if t.get_position() == (0, 0))
    assert text.get_text() == plots.fmt_loss(row["final_train_loss"].iloc[0]) == "3.94"
    assert [t.get_text() for t in axes[2].get_xticklabels()] == ["3e-3", "3e-2", "3e-1"]
    # a diverged cell (zero_grad=False, lr=0.3) reads inf or nan
    div = [t.get_text() for t in axes[2].texts if t.get_position()[0] == 2]
    assert set(div) <= {"inf", "nan"} and div
    _png(plots.save(fig, tmp_path / "map.png"))


def test_symptom_map_several_seeds_take_the_majority(frames):
    runs, _ = frames
    one = runs[(runs.optimizer == "sgd") & (runs.lr == 0.03) & (runs.noise == 0.1) & runs.zero_grad]
    seeds = pd.concat([one] * 3, ignore_index=True)
    seeds["run_id"] = ["a", "b", "c"]
    seeds["symptom"] = ["stalled", "healthy", "stalled"]
    seeds["final_train_loss"] = [1e-3, 2e-3, 3e-3]
    ax = _data_axes(plots.symptom_map(seeds)["linear"])[0]
    (patch,) = ax.patches
    assert to_hex(patch.get_facecolor()) == SYMPTOM_COLORS["stalled"].lower()
    assert ax.texts[0].get_text() == "2e-3\n2/3"


def test_overfitting_curves(frames, tmp_path):
    runs, hist = frames
    fig = plots.overfitting_curves(runs, hist)
    n_over = (runs["symptom"] == "overfitting").sum()
    assert len(_data_axes(fig)) == n_over
    ax = _data_axes(fig)[0]
    styles = [ln.get_linestyle() for ln in ax.get_lines()]
    assert "-" in styles and "--" in styles
    rid = runs.loc[runs.symptom == "overfitting", "run_id"].iloc[0]
    best = int(hist.loc[hist.run_id == rid, "val_loss"].to_numpy().argmin())
    assert 5 < best < EPOCHS - 5
    assert any(ln.get_label() == f"best val @ {best}" for ln in ax.get_lines())
    assert len(_data_axes(plots.overfitting_curves(runs, hist, max_runs=1))) == 1
    _png(plots.save(fig, tmp_path / "over.png"))
    assert plots.overfitting_curves(runs[runs.symptom != "overfitting"], hist) is None


def _linear_run(epochs: int = 200, lr: float = 0.03):
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 40)
    y = 0.8 * x + 0.5 + rng.normal(0, 0.2, 40)
    w = b = 0.0
    ws, bs, losses = [], [], []
    for _ in range(epochs):
        r = w * x + b - y
        losses.append(np.mean(r**2))
        w, b = w - lr * 2 * np.mean(r * x), b - lr * 2 * np.mean(r)
        ws.append(w)
        bs.append(b)
    return x, y, np.array(ws), np.array(bs), np.array(losses)


def test_fitted_line(tmp_path):
    x, y, w, b, loss = _linear_run()
    fig = plots.fitted_line(x, y, w, b, loss, x_val=x[:5] + 0.1, y_val=y[:5])
    data_ax, loss_ax = fig.axes
    labels = [ln.get_label() for ln in data_ax.get_lines()]
    assert labels == ["epoch 0", "epoch 1", "epoch 3", "epoch 10", "epoch 30", "epoch 100",
                      "epoch 199"]
    assert loss_ax.get_yscale() == "log"
    _png(plots.save(fig, tmp_path / "fit.png"))
    assert len(plots.fitted_line(x, y, w, b, loss, epochs=[0, 50]).axes[0].get_lines()) == 2


def test_fitted_line_gif(tmp_path):
    x, y, w, b, loss = _linear_run()
    path = plots.fitted_line_gif(x, y, w, b, loss, tmp_path / "anim" / "fit.gif", frames=20)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.size[0] > 0 and im.n_frames > 1


def test_edge_cases_do_not_crash(frames, tmp_path):
    runs, hist = frames
    empty = pd.DataFrame(columns=list(runs.columns))
    assert list(plots.loss_curves(empty, hist[:0])) == ["all"]
    assert list(plots.symptom_map(empty)) == ["all"]
    assert plots.overfitting_curves(empty, hist[:0]) is None
    # a single run of an arbitrary experiment: no facet columns, no symptom, all-NaN history
    bare = pd.DataFrame({"run_id": ["z"], "name": ["z"]})
    nan_hist = pd.DataFrame({"run_id": "z", "epoch": range(5), "train_loss": math.nan})
    for fig in [*plots.loss_curves(bare, nan_hist).values(), *plots.symptom_map(bare).values()]:
        _png(plots.save(fig, tmp_path / "bare.png"))
    # facet values as MLflow's string params, a zero final loss, a missing val_loss column
    strs = runs.assign(lr=runs["lr"].astype(str), zero_grad=runs["zero_grad"].astype(str),
                       final_train_loss=0.0)
    fig = plots.symptom_map(strs)["linear"]
    assert _data_axes(fig)[0].get_title() == "noise=0.1 · zero_grad=True"
    assert _data_axes(fig)[0].texts[0].get_text() == "0"
    plots.loss_curves(strs, hist.drop(columns="val_loss"), metric="val_loss")
    # runs without histories, and a diverged fitted line
    plots.save(plots.loss_curves(runs.head(3), hist[:0])["linear"], tmp_path / "nohist.png")
    x, y, w, b, loss = _linear_run(epochs=30, lr=1.5)
    loss[-3:] = np.inf
    w[-2:] = np.nan
    _png(plots.save(plots.fitted_line(x, y, w, b, loss), tmp_path / "div.png"))
    plots.fitted_line_gif(x, y, w, b, loss, tmp_path / "div.gif", frames=5)
    plots.save(plots.fitted_line([], [], [], [], []), tmp_path / "nothing.png")


def test_loss_curves_draw_a_few_repeats_of_each_grid_point(frames):
    runs, hist = frames
    one = runs[(runs.optimizer == "sgd") & (runs.lr == 0.03) & (runs.noise == 0.1) & runs.zero_grad]
    seeds = pd.concat([one] * 5, ignore_index=True)
    seeds["run_id"] = [f"s{i}" for i in range(5)]
    seeds["symptom"] = ["stalled", "healthy", "stalled", "diverged", "healthy"]
    h = hist[hist.run_id == one.run_id.iloc[0]]
    seed_hist = pd.concat([h.assign(run_id=f"s{i}") for i in range(5)], ignore_index=True)
    fig = plots.loss_curves(pd.concat([runs, seeds], ignore_index=True),
                            pd.concat([hist, seed_hist], ignore_index=True))["linear"]
    drawn = {rid for ax in _data_axes(fig) for rid, _, _ in _runs_drawn(ax)}
    # the original run of that grid point and the first two seeds; every other grid point's run
    assert {"s0", "s1"} <= drawn and not drawn & {"s2", "s3", "s4"}
    assert len(drawn) == len(runs) + 2
    assert "(3 more runs of the same grid points not drawn)" in fig._suptitle.get_text()


def _pixels(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_write_figures_shares_them_out_and_draws_the_same(frames, tmp_path):
    from sweeps.plots.batch import write_figures

    runs, hist = frames
    runs = runs.assign(model=np.where(runs["optimizer"] == "adam", "mlp", "linear"))
    forked = write_figures(runs, hist, tmp_path / "forked", processes=3)
    alone = write_figures(runs, hist, tmp_path / "alone", processes=1)
    names = {"loss_curves_linear.png", "loss_curves_mlp.png", "symptom_map_linear.png",
             "symptom_map_mlp.png", "overfitting.png"}
    assert {p.name for p in forked} == {p.name for p in alone} == names
    for p in forked:  # drawn by whichever process, the same picture
        assert np.array_equal(_pixels(p), _pixels(tmp_path / "alone" / p.name))
    # a figure this analysis does not draw does not stay from an earlier one
    healthy = runs.assign(symptom="healthy")
    again = write_figures(healthy, hist, tmp_path / "forked", processes=2)
    assert "overfitting.png" not in {p.name for p in again}
    assert not (tmp_path / "forked" / "overfitting.png").exists()


def test_background_helper_draws_handed_frames(frames, tmp_path):
    from sweeps.plots import background

    runs, hist = frames
    drawer = background.start_figures()
    proc = drawer.proc
    drawer.send_figures(runs, hist, tmp_path / "bg")
    files = drawer.files()
    assert proc.returncode == 0  # one job, then it ends
    assert {p.name for p in files} == {"loss_curves_linear.png", "symptom_map_linear.png",
                                       "overfitting.png"}
    for p in files:
        _png(p)


def test_background_helper_gone_means_drawing_here(frames, tmp_path, caplog):
    from sweeps.plots import background

    runs, hist = frames
    drawer = background.start_figures()
    drawer.proc.kill()
    drawer.proc.wait()
    drawer.send_figures(runs, hist, tmp_path / "here")
    files = drawer.files()
    assert "drawing here" in caplog.text
    assert {p.name for p in files} >= {"loss_curves_linear.png", "symptom_map_linear.png"}
    for p in files:
        _png(p)


def test_background_helper_closed_without_a_job_ends(tmp_path):
    from sweeps.plots import background

    drawer = background.start_figures()
    proc = drawer.proc
    drawer.close()
    assert proc.returncode is not None and drawer.proc is None  # ended, not left running
    assert not list(tmp_path.iterdir())


def test_a_val_logged_every_five_epochs_is_drawn_through_its_points(frames):
    # what sweeps-analyze reads from a script that evaluates every 5 epochs: NaN between
    runs, hist = frames
    sparse = hist.copy()
    sparse.loc[sparse["epoch"] % 5 != 0, "val_loss"] = math.nan
    (fig,) = plots.loss_curves(runs, sparse, metric="val_loss").values()
    segments = [s for ax in _data_axes(fig) for c in ax.collections if c.get_gid() == "runs"
                for s in c.get_segments()]
    # a line joining the logged points, not isolated points between gaps (nothing drawn)
    joined = [s for s in segments if len(s) >= EPOCHS // 5 and np.isfinite(s).all()]
    assert len(joined) >= (runs.symptom != "diverged").sum()
    over = plots.overfitting_curves(runs, sparse)
    dashed = [ln for ax in _data_axes(over) for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert dashed and all(len(ln.get_xdata()) == EPOCHS // 5 for ln in dashed)
