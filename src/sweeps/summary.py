"""What the end of a sweep says: the counts per symptom and the summary printed and stored on
the parent run, and what the MLflow UI shows of it (the experiment's and the parent run's
descriptions, the parent's metrics, where to browse)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from sweeps import tracking
from sweeps.diagnose import SYMPTOMS


@dataclass
class SweepResult:
    total: int
    finished: int
    failed: int
    killed: int
    skipped: int
    by_symptom: dict[str, int]
    errors: list[str]
    examples: dict[str, str] = field(default_factory=dict)  # symptom -> a run name
    best: str = ""  # the healthy run with the lowest final val_loss
    best_val_loss: Optional[float] = None

    @property
    def ok(self) -> bool:
        return self.failed == 0


def result_of(rows: list[tracking.ChildRow], skipped: int = 0) -> SweepResult:
    by_symptom: dict[str, int] = {}
    for r in rows:
        if r.status == "FINISHED" and r.symptom:
            by_symptom[r.symptom] = by_symptom.get(r.symptom, 0) + 1
    failed = [r for r in rows if r.status == "FAILED"]
    examples: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: r.name):
        if r.status == "FINISHED" and r.symptom:
            examples.setdefault(r.symptom, r.name)
    healthy = [r for r in rows if r.symptom == "healthy" and r.val_loss == r.val_loss]
    best = min(healthy, key=lambda r: r.val_loss, default=None)
    return SweepResult(
        examples=examples,
        best=f"{best.name} (val_loss {best.val_loss:.3g})" if best else "",
        best_val_loss=best.val_loss if best else None,
        total=len(rows),
        finished=sum(r.status == "FINISHED" for r in rows),
        failed=len(failed),
        killed=sum(r.status == "KILLED" for r in rows),
        skipped=skipped,
        by_symptom=dict(sorted(by_symptom.items())),
        errors=[f"{r.name}: {r.error}" for r in failed],
    )


def summary_text(sweep: Any, result: SweepResult, seconds: float, plots: Optional[str] = None) -> str:
    """The end-of-sweep report: a table of runs per symptom with an example each, the best
    healthy run, the failures, where the plots are, and how to open the store."""
    lines = [
        f"sweep '{sweep.experiment}': {result.total + result.skipped} jobs in {seconds:.1f} s: "
        f"{result.finished} finished, {result.failed} failed"
        + (f", {result.killed} killed" if result.killed else "")
        + f", {result.skipped} skipped (finished before)",
    ]
    if result.by_symptom:
        lines.append(f"  {'symptom':<12} {'runs':>5}  example")
        for symptom in SYMPTOMS:
            if symptom in result.by_symptom:
                lines.append(f"  {symptom:<12} {result.by_symptom[symptom]:>5}  {result.examples.get(symptom, '')}")
    if result.best:
        lines.append(f"  best healthy run: {result.best}")
    lines += [f"  failed: {e}" for e in result.errors]
    if plots:
        lines.append(f"  plots: {plots}")
    lines += where_to_browse(sweep.uri, sweep.experiment, sweep.experiment_id)
    return "\n".join(lines)


def swept(params: dict, task_overrides: list[str]) -> list[str]:
    """The swept overrides of a launch (``optimizer.lr=0.001,0.01``): the preset's
    ``hydra.sweeper.params`` and the command line's, the command line's winning."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    items = [f"{k}={v}" for k, v in params.items()] + list(task_overrides)
    out: dict[str, str] = {}
    for ov in OverridesParser.create().parse_overrides(items):
        if ov.is_sweep_override():
            out[ov.key_or_group] = ov.input_line.strip()
        else:
            out.pop(ov.key_or_group, None)
    return list(out.values())


def experiment_note(experiment: str, grid: list[str], runs: Optional[int], url: Optional[str]) -> str:
    """The experiment's description (markdown): where its runs are (MLflow opens an experiment
    in its GenAI view, with this text on top), what a sweep is, its grid, what to type."""
    link = f"[the runs table]({url.split('/', 3)[-1]})" if url else "the runs table"
    lines = [
        f"**Training runs of `sweeps`, not traces: open {link}** (or switch *GenAI* to *Model "
        "training* at the top left, then *Runs*). Each launch is a parent run with the summary, "
        "the plots and runs-per-symptom metrics; expand its row for one child run per grid "
        "point, labelled in the tags `symptom` (`healthy`, `diverged`, `stalled`, `oscillating`, "
        "`overfitting`), `cause` and `fix` (the run's description gives the evidence).",
        "",
        f"**Latest grid** of experiment `{experiment}` ({runs if runs else '?'} runs): "
        + (" x ".join(f"`{g}`" for g in grid) or "one run"),
        "",
        "- the `symptom` column: *Columns* > Tags > symptom",
        "- only the diverged runs: type `tags.symptom = 'diverged'` in the search box",
        "- every run of every launch, flat: `tags.sweeps.role = 'child'`",
        "- counts per symptom: *Group by* `tags.symptom`, or the *Chart* view (the parent's "
        "`runs/<symptom>` metrics)",
    ]
    return "\n".join(lines)


def parent_metrics(by_symptom: dict[str, int], failed: int, best_val_loss: Optional[float]) -> dict[str, float]:
    """The parent run's metrics for the chart view: runs per symptom (0 for the absent ones),
    failed runs, and the best healthy validation loss."""

    metrics = {f"runs/{s}": float(by_symptom.get(s, 0)) for s in SYMPTOMS}
    metrics["runs/failed"] = float(failed)
    if best_val_loss is not None and best_val_loss == best_val_loss:
        metrics["best_val_loss"] = float(best_val_loss)
    return metrics


def parent_note(summary: str, by_symptom: dict[str, int], examples: dict[str, str], best: str,
                errors: list[str], plots: list[str]) -> str:
    """The parent run's description (markdown): the summary table, the best run, failures and
    the plots (shown as images under *Model metrics*, stored as artifacts under analysis/)."""

    head = summary.splitlines()[0] if summary else ""
    lines = [f"**{head}**", "", "| symptom | runs | example |", "|---|---:|---|"]
    lines += [f"| `{s}` | {by_symptom[s]} | {examples.get(s, '')} |" for s in SYMPTOMS if s in by_symptom]
    if best:
        lines += ["", f"Best healthy run: {best}"]
    if errors:
        lines += ["", "Failed:"] + [f"- {e}" for e in errors[:20]]
    if plots:
        lines += ["", "Plots (images under *Model metrics*, files under *Artifacts* > analysis): "
                  + ", ".join(f"`{p}`" for p in plots)]
    lines += ["", "Its runs: expand this run's row in the runs table, or filter "
              "`tags.symptom = 'diverged'`; the chart view compares the `runs/<symptom>` counts."]
    return "\n".join(lines)


def where_to_browse(uri: str, experiment: str, experiment_id: Optional[str] = None) -> list[str]:
    """How to open the results: the store, the `mlflow ui` command for a local one, and the URL
    of the experiment's runs in the UI's Model training view (no credentials in either)."""

    shown = tracking.scrub(uri)
    if experiment_id is None:
        found = tracking.find_experiment(uri, experiment)
        experiment_id = found[0] if found else None
    url = tracking.runs_url(uri, experiment_id) if experiment_id is not None else None
    lines = [f"  store: {shown} (experiment '{experiment}')"]
    if shown.startswith(("http://", "https://")):
        return lines + ([f"  runs: {url}"] if url else [])
    lines.append(f"  browse: mlflow ui --backend-store-uri {shown}")
    return lines + ([f"  then open: {url}"] if url else [])
