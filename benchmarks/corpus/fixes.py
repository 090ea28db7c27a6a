"""Do the prescribed fixes heal the corpus's runs? Each run the labeller calls unhealthy is
re-run with its fix (every override, together); a rerun still unhealthy gets its own fix on top
(round 2; its lr bracketed by round 1's: sweeps.diagnose.next_round). Healed: the labeller
calls the rerun healthy."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

from corpus.score import _name, label
from sweeps.diagnose import next_round


def _custom(cfg: dict, fix: list[str]) -> dict:
    c = copy.deepcopy(cfg)
    for o in fix:
        key, value = o.split("=", 1)
        group, name = key.split(".", 1)
        c[group][name] = _value(value)
    return c


def _value(v: str) -> Any:
    """An override's value as Hydra reads it (``1e-06`` is a float, YAML 1.1 says a string)."""
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def to_heal(r: dict[str, Any]) -> bool:
    """Is this scored run re-run by heal(): labelled unhealthy, with a fix?"""
    d = r["diagnosis"]
    return d.symptom != "healthy" and bool(d.fix)


def heal(rows: list[dict[str, Any]], rounds: int = 2) -> list[dict[str, Any]]:
    """For every labelled-unhealthy run with a fix (to_heal): the symptom after round 1 (and
    2), in the rows' order."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from corpus.runner import compose_run, history
    from corpus.trainer import fit
    from ground_truth import with_fix
    from sweeps.config import register_configs, training_config

    def rerun(r: dict, fix: list[str], state: Any) -> tuple[Any, Any]:
        if r["source"] == "runner":
            ov = list(state)
            for o in fix:
                ov = with_fix(ov, o)
            cfg = compose_run(ov)
            h = history(cfg)
            new = {**r, "config": training_config(cfg), "history": h}
            return label(new), ov
        cfg = _custom(state, fix)
        full = not cfg["train"].get("batch_size") or \
            cfg["train"]["batch_size"] >= cfg["data"]["n_train"]
        return label({**r, "config": cfg, "history": fit(cfg), "full_batch": full}), cfg

    register_configs()
    GlobalHydra.instance().clear()
    out = []
    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        for r in rows:
            if not to_heal(r):
                continue
            d = r["diagnosis"]
            state = r["overrides"] if r["source"] == "runner" else r["config"]
            d1, state = rerun(r, d.fix, state)
            d2, fix2 = None, None
            if rounds >= 2 and d1.symptom != "healthy" and d1.fix:
                fix2 = next_round(r["config"]["optimizer"].get("lr"), d.fix, d1.fix)
                d2, _ = rerun(r, fix2, state)
            out.append({"part": r["part"], "family": r["family"], "symptom": d.symptom,
                        "round1": d1.symptom, "round2": d2.symptom if d2 else None,
                        "name": _name(r), "truth": r["truth"]["symptom"], "fix1": d.fix,
                        "fix2": fix2,
                        "ev": {k: d1.evidence.get(k) for k in ("removed_share", "floor",
                                                                "tail_climb", "val_rise")}})
    GlobalHydra.instance().clear()
    return out


def heal_report(results: list[dict[str, Any]], verbose: bool = False) -> str:
    lines = ["", "fixes: every run labelled unhealthy re-run with its fix (round 2: the rerun's "
             "own fix on top)"]
    for part in ("calibration", "test", "fresh", "preset"):
        sel = [x for x in results if x["part"] == part]
        if not sel:
            continue
        r1 = sum(x["round1"] == "healthy" for x in sel)
        r2 = sum(x["round1"] == "healthy" or x["round2"] == "healthy" for x in sel)
        lines.append(f"  {part}: healed in round 1 {r1}/{len(sel)} = {r1 / len(sel):.1%}, "
                     f"after round 2 {r2}/{len(sel)} = {r2 / len(sel):.1%}")
        per = Counter(x["symptom"] for x in sel)
        lines.append("    per symptom (round 1 / after 2): " + ", ".join(
            f"{s} {sum(x['round1'] == 'healthy' for x in sel if x['symptom'] == s)}/"
            f"{sum(x['round1'] == 'healthy' or x['round2'] == 'healthy' for x in sel if x['symptom'] == s)}"
            f" of {n}" for s, n in sorted(per.items())))
        became = Counter((x["symptom"], x["round2"] or x["round1"]) for x in sel
                         if x["round1"] != "healthy" and x["round2"] != "healthy")
        if became:
            lines.append("    not healed, became: " + ", ".join(
                f"{a} -> {b}: {n}" for (a, b), n in sorted(became.items())))
        if verbose:
            for x in sel:
                if x["round1"] != "healthy":
                    lines.append(f"      {x['family']} {x['name']}: truth {x['truth']}, label "
                                 f"{x['symptom']}; {' '.join(x['fix1'])} -> {x['round1']} "
                                 f"{x['ev']}" + (f"; {' '.join(x['fix2'])} -> {x['round2']}"
                                                 if x["fix2"] else ""))
    return "\n".join(lines)
