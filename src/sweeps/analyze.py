"""``sweeps-analyze``: read a sweep back from the store, label every run with the symptom table,
write the labels as tags, and produce a CSV and comparison plots; ``--verify-fixes`` re-runs
each unhealthy run with its prescribed fix (all its overrides) and measures how many become
healthy.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from sweeps import secrets, stopping, tracking
from sweeps.config_error import ConfigError
from sweeps.diagnose import SYMPTOMS, diagnose
from sweeps.diagnose.params import Params
from sweeps.foreign import KEYS_TAG, label_tags
from sweeps.plots.background import holding
from sweeps.summary import where_to_browse

if TYPE_CHECKING:  # pandas loads with the first frame (not for --help or a bad argument)
    import pandas as pd

log = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    """``verify_fixes`` and ``verify_report`` (part of this CLI's API), loaded when asked for."""
    if name in ("verify_fixes", "verify_report"):
        from sweeps import verify

        return getattr(verify, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")



@dataclass
class Analysis:
    """Everything one analysis produced."""

    experiment: str
    experiment_id: str
    runs: pd.DataFrame  # one row per run, with its label
    histories: pd.DataFrame  # long: run_id, epoch, train_loss, val_loss, grad_norm
    skipped: list[str]  # names of runs without the loss metrics
    output_dir: Path
    prefixed: int = 0  # runs whose own symptom/cause/fix tags made the labels go to sweeps.*
    holder: str = ""  # the run that holds the CSV and plots, in words (set by write_outputs)
    notes: list[str] = field(default_factory=list)  # which metrics were read as the losses


# --- labelling ---------------------------------------------------------------------------------


def label(runs: pd.DataFrame, histories: pd.DataFrame, relabel: bool = False,
          baseline: Optional[float] = None) -> dict[str, dict[str, str]]:
    """Label runs that have no label (every run with ``relabel``), in place. Returns the tags to
    write, per run id. ``baseline``: the loss of predicting a constant, for the runs that do
    not record their own (``data.baseline_loss``, ``baseline_loss``, ...)."""
    grouped = {rid: g for rid, g in histories.groupby("run_id", sort=False)}
    new_tags: dict[str, dict[str, str]] = {}
    for i, row in runs.iterrows():
        g = grouped.get(row.run_id)
        if g is None:
            continue
        runs.at[i, "final_train_loss"] = g["train_loss"].iloc[-1]
        runs.at[i, "final_val_loss"] = g["val_loss"].iloc[-1]
        runs.at[i, "epochs_run"] = len(g)
        if row.symptom in SYMPTOMS and not relabel:
            continue
        val, grad = g["val_loss"].tolist(), g["grad_norm"].tolist()
        config = row.params
        if baseline is not None and Params(config).get_float("data.baseline_loss") is None:
            config = {**config, "baseline_loss": repr(baseline)}
        d = diagnose(g["train_loss"].tolist(), None if all(map(math.isnan, val)) else val,
                     config=config, grad_norm=None if all(map(math.isnan, grad)) else grad)
        runs.at[i, "symptom"], runs.at[i, "fix"] = d.symptom, d.fix_str()
        labels = {"symptom": d.symptom, "cause": d.cause, "fix": d.fix_str(),
                  "symptom_confidence": d.confidence}
        new_tags[row.run_id] = label_tags(row.tags, tracking.TAG_ROLE, tracking.TAG_NOTE,
                                          labels, d.markdown())
    return new_tags


def analyse(uri: str, experiment: Optional[str], train_key: Optional[str] = None,
            val_key: Optional[str] = None, relabel: bool = False,
            output_root: str = "outputs", baseline: Optional[float] = None) -> Analysis:
    """Read, label and tag an experiment (the latest sweep's when ``experiment`` is None); the
    loss metrics ``train_key``/``val_key``, or (None) the first of their common names logged.

    Raises:
        ConfigError: the experiment does not exist, the store has no sweep, or no run logged a
            loss metric asked for.
    """
    found = tracking.find_experiment(uri, experiment)
    if found is None:
        what = f"experiment {experiment!r}" if experiment else "sweep"
        names = ", ".join(tracking.experiment_names(uri)[:12]) or "none"
        raise ConfigError(f"--experiment={experiment!r}: no {what} in {tracking.scrub(uri)}; "
                          f"run a sweep first or name one of its experiments: {names}")
    exp_id, exp_name = found
    from sweeps.frames import histories_frame, metric_keys, runs_frame

    found_runs = tracking.search_all(uri, exp_id)
    runs = runs_frame(found_runs)
    if runs.empty:
        raise ConfigError(f"--experiment={exp_name!r}: it has no runs to analyse")
    ids = set(runs["run_id"])
    logged = {k for r in found_runs if r.info.run_id in ids for k in r.data.metrics}
    train_key, val_key, notes = metric_keys(logged, train_key, val_key)
    histories = histories_frame(uri, runs["run_id"].tolist(), train_key, val_key)
    have = set(histories["run_id"])
    skipped = runs.loc[~runs["run_id"].isin(have), "name"].tolist()
    runs = runs[runs["run_id"].isin(have)].reset_index(drop=True)
    for col in ("final_train_loss", "final_val_loss"):
        runs[col] = math.nan
    runs["epochs_run"] = 0
    tags = label(runs, histories, relabel, baseline)
    tracking.set_tags(uri, tags)
    out = Path(output_root) / exp_name / "analysis"
    prefixed = sum(t.get(KEYS_TAG) == "prefixed" for t in tags.values())
    return Analysis(exp_name, exp_id, runs, histories, skipped, out, prefixed, notes=notes)


# --- outputs -----------------------------------------------------------------------------------


def write_outputs(a: Analysis, uri: str, plots: bool = True, run: Optional[str] = None,
                  parent_id: Optional[str] = None, gif: Optional[bool] = None,
                  drawer: Any = None) -> list[Path]:
    """CSV and plots into ``a.output_dir``; logged as artifacts of the sweep's parent run
    (``parent_id``, else the experiment's latest). ``gif``: animate the fitted line too (None:
    only when its run is the explainer's worked example); ``drawer``: a warm plot process
    (sweeps.plots.background) to draw the figures in."""
    a.output_dir.mkdir(parents=True, exist_ok=True)
    cols = ["run_id", "name", "status", "model", "optimizer", "lr", "noise", "zero_grad", "symptom",
            "fix", "final_train_loss", "final_val_loss", "epochs_run"]
    files = [a.output_dir / "labels.csv"]
    a.runs[cols].to_csv(files[0], index=False)
    if plots and not a.runs.empty:
        files += _plots(a, uri, run, gif, drawer)
    holder = parent_id or _parent_run(uri, a.experiment_id)
    tracking.log_dir(uri, holder, a.output_dir, "analysis")
    a.holder = (f"the sweep's parent run {holder}" if parent_id else _holder_words(uri, a, holder))
    return files


def _holder_words(uri: str, a: Analysis, run_id: str) -> str:
    run = tracking.run_of(uri, a.experiment_id, run_id)
    tags = run.data.tags if run else {}
    what = "the sweep's parent run" if tags.get(tracking.TAG_ROLE) == "parent" else \
        f"the analysis run in experiment '{a.experiment}'"
    name = run.info.run_name if run else ""
    return f"{what} '{name}' ({run_id})" if name else f"{what} {run_id}"


def _plots(a: Analysis, uri: str, chosen: Optional[str], gif: Optional[bool] = None,
           drawer: Any = None) -> list[Path]:
    """Every figure, the fitted line's too, drawn by the warm plot process when there is one
    (this process then never loads matplotlib), else here, several at a time."""
    pick = _pick_line_run(a.runs, chosen)
    line = _line_arrays(uri, pick) if pick is not None else None
    if gif is None:  # the animation (~1 s to draw) is the explainer's: its worked example only
        gif = pick is not None and _worked_example(pick)
    if drawer is None:
        from sweeps.plots.batch import write_figures  # several processes at once

        return write_figures(a.runs, a.histories, a.output_dir, line=line, gif=gif)
    drawer.send_figures(a.runs, a.histories, a.output_dir, line, gif)  # matplotlib is there
    return drawer.files()


def _worked_example(run: pd.Series) -> bool:
    """The explainer's worked example: a linear model under SGD at lr 0.03."""
    lr = run["lr"]
    return run["optimizer"] == "sgd" and isinstance(lr, (int, float)) and abs(lr - 0.03) < 1e-9


def _pick_line_run(runs: pd.DataFrame, chosen: Optional[str]) -> Optional[pd.Series]:
    """The run for the fitted-line picture: ``--run`` (id or name), else the healthy linear run
    closest to the explainer's worked example (SGD, lr near 0.03, least noise)."""
    if chosen:
        hit = runs[(runs["run_id"] == chosen) | (runs["name"] == chosen)]
        if hit.empty:
            raise ConfigError(f"--run={chosen!r}: no such run id or name in this experiment")
        return hit.iloc[0]
    linear = runs[(runs["model"].isin(["linear", "-"])) & (runs["symptom"] == "healthy")]
    if linear.empty:
        return None
    score = (linear["optimizer"] != "sgd") * 10 + (linear["lr"].apply(lambda v: abs(math.log10(v / 0.03)) if v > 0 else 9)) + linear["noise"].fillna(0)
    return linear.loc[score.idxmin()]


def _line_arrays(uri: str, run: pd.Series) -> Optional[dict]:
    """The fitted-line picture's arguments for one run (None for a run without w/b histories,
    or whose params do not say how its data was drawn: a foreign run)."""
    from sweeps.points import points

    hist = tracking.histories(uri, [run.run_id], ["w", "b", "train_loss"])
    w = [v for _, v in hist.get((run.run_id, "w"), [])]
    b = [v for _, v in hist.get((run.run_id, "b"), [])]
    loss = [v for _, v in hist.get((run.run_id, "train_loss"), [])]
    data = points(run.params) if w and b else None
    return dict(data, w=w, b=b, train_loss=loss) if data is not None else None


def _parent_run(uri: str, exp_id: str) -> str:
    """The latest sweep parent of the experiment, or a run made to hold the analysis."""
    parents = tracking.runs_tagged(uri, exp_id, tracking.TAG_ROLE, "parent")
    if parents:
        return max(parents, key=lambda r: r.info.start_time or 0).info.run_id
    return tracking.finished_run(uri, exp_id, "analysis", {tracking.TAG_ROLE: "analysis"})


def report(a: Analysis, show: int = 30) -> str:
    """The console table: counts per symptom, then up to ``show`` runs (unhealthy first)."""
    counts = a.runs["symptom"].value_counts()
    lines = [f"experiment '{a.experiment}': {len(a.runs)} runs labelled"]
    lines += [f"  {note}" for note in a.notes]
    lines += [f"  {s:<12} {int(counts.get(s, 0)):>5}" for s in SYMPTOMS]
    if a.skipped:
        lines.append(f"  skipped {len(a.skipped)} run(s) without the loss metrics: "
                     + ", ".join(a.skipped[:5]) + (" ..." if len(a.skipped) > 5 else ""))
    order = a.runs.assign(h=a.runs["symptom"] == "healthy").sort_values(["h", "symptom", "name"])
    lines.append("")
    lines.append(f"  {'run':<44} {'symptom':<12} {'final loss':>10}  fix")
    for _, r in order.head(show).iterrows():
        lines.append(f"  {r['name'][:44]:<44} {r.symptom:<12} {r.final_train_loss:>10.3g}  {r.fix}")
    if len(order) > show:
        lines.append(f"  ... {len(order) - show} more in {a.output_dir / 'labels.csv'}")
    return "\n".join(lines)


# --- CLI ---------------------------------------------------------------------------------------


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sweeps-analyze", description=__doc__.split("\n")[0])
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                   "else sqlite:///<output-root>/mlflow.db)")
    p.add_argument("--experiment", help="experiment to analyse (default: the latest sweep's)")
    p.add_argument("--train-metric", help="metric key of the training loss (default: the first "
                   "logged of train_loss, loss, training_loss, ...)")
    p.add_argument("--val-metric", help="metric key of the validation loss (default: the first "
                   "logged of val_loss, validation_loss, valid_loss, eval_loss, ...)")
    p.add_argument("--output-root", default="outputs", help="analysis goes to <root>/<experiment>/analysis")
    p.add_argument("--relabel", action="store_true", help="label every run again, not only unlabelled ones")
    p.add_argument("--no-plots", action="store_true", help="write the CSV and tags only")
    p.add_argument("--run", help="run id or name for the fitted-line picture")
    p.add_argument("--gif", action="store_true", help="also animate the fitted line (drawn by "
                   "default only for the explainer's worked example: SGD at lr 0.03)")
    p.add_argument("--show", type=int, default=30, help="runs to list on the console")
    p.add_argument("--verify-fixes", action="store_true",
                   help="re-run every unhealthy run with its prescribed fix (all its overrides) and "
                   "report how many became healthy")
    p.add_argument("--rounds", type=int, default=1,
                   help="with --verify-fixes: a fix that did not heal gets another round with the "
                   "rerun's own diagnosis, up to this many rounds in all (1 or 2)")
    p.add_argument("--baseline-loss", metavar="LOSS",
                   help="the loss of predicting a constant on the runs' training data (MSE: the "
                   "targets' variance; cross-entropy: the class frequencies' entropy, ln 10 for "
                   "10 balanced classes), for runs that do not log their own baseline_loss param: "
                   "a run that sits there learned nothing from its inputs. Relabels every run")
    return p.parse_args(argv)


def _baseline(value: Optional[str]) -> Optional[float]:
    """--baseline-loss as a number, or a one-line error naming what is allowed."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ConfigError(f"--baseline-loss={value!r}: must be a positive number, the loss of "
                          "predicting a constant (e.g. the training targets' variance)")
    return number


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point of ``sweeps-analyze`` and ``python -m sweeps.analyze``."""
    args = parse_args(argv)
    stopping.install()  # Ctrl-C and SIGTERM: exit 130/143 in one line, a rerun KILLED
    secrets.guard_console()  # no credential of --tracking-uri reaches the console
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    uri = tracking.resolve_uri(args.tracking_uri, args.output_root)
    try:
        if args.rounds not in (1, 2):
            raise ConfigError(f"--rounds={args.rounds}: must be 1 or 2")
        baseline = _baseline(args.baseline_loss)
        if tracking.local_store_path(uri) and not tracking.local_store_path(uri).is_file():
            raise ConfigError(f"--tracking-uri={uri!r}: no store there; run a sweep first or point at one")
        start = time.perf_counter()
        drawer = None
        if not args.no_plots:  # matplotlib loads there while the store is read here
            from sweeps.plots import background

            drawer = background.start_figures()
        a = analyse(uri, args.experiment, args.train_metric, args.val_metric,
                    args.relabel or baseline is not None, args.output_root, baseline)
        with holding(a.output_dir, say=lambda words: print(words, flush=True)):  # a sweep's plots first
            files = write_outputs(a, uri, plots=not args.no_plots, run=args.run,
                                  gif=True if args.gif else None, drawer=drawer)
        print(report(a, args.show))
        print(f"\nwrote {len(files)} files to {a.output_dir} in {time.perf_counter() - start:.1f} s "
              f"(also artifacts of {a.holder})")
        print("\n".join(where_to_browse(uri, a.experiment, a.experiment_id)))
        if a.prefixed:
            print(f"{a.prefixed} run(s) had their own symptom/cause/fix tags, left as they were: "
                  "the labels are in sweeps.symptom, sweeps.cause, sweeps.fix and "
                  "sweeps.symptom_confidence there")
        if args.verify_fixes:
            from sweeps.verify import verify_fixes, verify_report

            result = verify_fixes(a, uri, rounds=args.rounds)
            print(verify_report(result))
            if not result.empty:  # the sweep's parent run charts the share its fixes healed
                tracking.log_results(uri, _parent_run(uri, a.experiment_id), {
                    "fixes/healed_share": float((result["healed_in"] > 0).mean()),
                    "fixes/healed_in_round_1_share": float((result["healed_in"] == 1).mean()),
                    "fixes/attempted": float(len(result))})
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as err:  # a stop (Ctrl-C, SIGTERM): what was written stays
        stopping.leave(err)
    except Exception as err:  # noqa: BLE001 - one line; SWEEPS_DEBUG=1 shows the traceback
        if os.environ.get("SWEEPS_DEBUG"):
            raise
        print(f"error: {type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}",
              file=sys.stderr)
        sys.exit(1)


def entry() -> None:
    """The console script: ``main``, then the process ends at once (exiting.py)."""
    from sweeps.exiting import run_then_exit

    run_then_exit(main)


if __name__ == "__main__":
    entry()
