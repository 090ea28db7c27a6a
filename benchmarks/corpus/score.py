"""Label every cached run with sweeps.diagnose and compare with its ground truth: confusion
matrix, label and cause accuracy, and accuracy of the clear vs borderline labels, per part."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sweeps.diagnose import DEFAULT, SYMPTOMS, Thresholds, diagnose


def _zero_grad_off(config: dict) -> bool:
    v = (config.get("train") or {}).get("zero_grad")
    return v is False or str(v).lower() == "false"


# The sources whose runs record their baseline loss (the loss of the best constant prediction)
# as ``data.baseline_loss``: this project's runner does (since the seventh session); another
# script's runs (the custom trainer) do not, unless generalisation.py --baseline asks what a
# script that logs ``baseline_loss`` would get.
BASELINE_SOURCES = {"runner"}
# Validation logged every VAL_EVERY epochs only, at epochs VAL_PHASE, VAL_PHASE + VAL_EVERY, ...
# (NaN between), as a script that evaluates every k epochs logs it: generalisation.py
# --val-every K [--val-phase P]. 1: every epoch, as the corpus recorded it.
VAL_EVERY, VAL_PHASE = 1, 0


def _sparse(val: list[float]) -> list[float]:
    if VAL_EVERY <= 1 or not val:
        return val
    return [v if i % VAL_EVERY == VAL_PHASE else float("nan") for i, v in enumerate(val)]


def label(run: dict[str, Any], thresholds: Thresholds = DEFAULT):
    h, config = run["history"], run["config"]
    if run.get("source") == "custom":
        from corpus.trainer import logged

        config = logged(config)
    if run.get("source") in BASELINE_SOURCES:
        if "baseline" not in run:  # of the targets: the same for a fix (normalising is of x)
            from corpus.families import _constant_loss

            run["baseline"] = float(f"{_constant_loss(run):.6g}")  # as the store keeps it
        config = {**config, "data": {**config["data"], "baseline_loss": run["baseline"]}}
    return diagnose(h["train_loss"], _sparse(h["val_loss"]), config=config,
                    grad_norm=h["grad_norm"] if run.get("full_batch", True) else None,
                    thresholds=thresholds)


def score(runs: list[dict[str, Any]], thresholds: Thresholds = DEFAULT) -> list[dict[str, Any]]:
    out = []
    for r in runs:
        d = label(r, thresholds)
        truth = r["truth"]["symptom"]
        named = "zero_grad" in d.cause or "train.zero_grad=true" in d.fix
        bug = _zero_grad_off(r["config"]) and truth != "healthy"
        cause_ok = named if bug else (d.symptom == truth and not named)
        out.append({**r, "label": d.symptom, "diagnosis": d, "bug": bug,
                    "cause_ok": cause_ok if truth != "healthy" else None,
                    "confidence": getattr(d, "confidence", None)})
    return out


def _matrix(rows: list[dict[str, Any]]) -> list[str]:
    pairs = Counter((r["truth"]["symptom"], r["label"]) for r in rows)
    lines = ["  counts (rows: ground truth, columns: label)",
             f"  {'':13s}" + "".join(f"{s:>12s}" for s in SYMPTOMS) + f"{'total':>8s}"
             + f"{'right':>8s}"]
    for s in SYMPTOMS:
        n = sum(pairs[(s, x)] for x in SYMPTOMS)
        lines.append(f"  {s:13s}" + "".join(f"{pairs[(s, x)]:12d}" for x in SYMPTOMS)
                     + f"{n:8d}" + (f"{pairs[(s, s)] / n:8.0%}" if n else f"{'-':>8s}"))
    return lines


def _frac(a: int, b: int) -> str:
    return f"{a}/{b} = {a / b:.1%}" if b else "0/0"


def report(rows: list[dict[str, Any]], verbose: bool = False) -> str:
    lines: list[str] = []
    for part in ("calibration", "test", "fresh", "preset"):
        sel = [r for r in rows if r["part"] == part]
        if not sel:
            continue
        right = sum(r["label"] == r["truth"]["symptom"] for r in sel)
        unhealthy = [r for r in sel if r["cause_ok"] is not None]
        bugs = [r for r in sel if r["bug"]]
        lines += [f"== {part} ({', '.join(sorted({r['family'] for r in sel}))})", *_matrix(sel),
                  f"  labels right: {_frac(right, len(sel))}",
                  f"  causes right (unhealthy by truth): "
                  f"{_frac(sum(r['cause_ok'] for r in unhealthy), len(unhealthy))}",
                  f"  zero_grad bug named: {_frac(sum(r['cause_ok'] for r in bugs), len(bugs))}"]
        for conf in ("clear", "borderline"):
            c = [r for r in sel if r["confidence"] == conf]
            if c:
                ok = sum(r["label"] == r["truth"]["symptom"] for r in c)
                lines.append(f"  {conf:10s} labels right: {_frac(ok, len(c))}")
        fams = Counter(r["family"] for r in sel)
        lines.append("  per family: " + ", ".join(
            f"{f} {sum(r['label'] == r['truth']['symptom'] for r in sel if r['family'] == f)}"
            f"/{n}" for f, n in sorted(fams.items())))
        if verbose:
            for r in sel:
                if r["label"] != r["truth"]["symptom"] or r["cause_ok"] is False:
                    lines.append(f"    {r['family']} {_name(r)}: truth {r['truth']['symptom']} "
                                 f"({r['truth']['why']}); label {r['label']}"
                                 f" [{r['confidence']}] {_ev(r['diagnosis'].evidence)}")
        lines.append("")
    return "\n".join(lines)


def _ev(ev: dict[str, Any]) -> str:
    keys = ("runaway", "removed_share", "floor", "tail_ratio", "tail_climb", "tail_epochs_above",
            "tail_max_swing", "val_rise", "margin")
    return " ".join(f"{k}={ev[k]}" for k in keys if k in ev)


def _name(r: dict[str, Any]) -> str:
    if r["source"] == "runner":
        return " ".join(r["overrides"])
    c = r["config"]
    parts = [c["data"]["name"], c["model"]["name"], c["optimizer"]["name"],
             f"lr={c['optimizer']['lr']}", f"T={c['train']['epochs']}"]
    parts += [f"{k}={v}" for k, v in (("zg", c["train"]["zero_grad"]),
                                      ("norm", c["data"].get("normalize")),
                                      ("bs", c["train"].get("batch_size")),
                                      ("sched", c["train"].get("lr_schedule")),
                                      ("act", c["model"].get("act")),
                                      ("loss", c["data"].get("loss"))) if v not in (None, "constant")]
    return " ".join(parts)
