"""``sweeps-analyze --verify-fixes``: re-run every unhealthy run with its prescribed fix and
count how many become healthy; with ``--rounds 2`` a fix that did not heal gets a second round
with the rerun's own diagnosis (its lr bracketed by round 1's: diagnose.next_round), and the
report says which round healed each run."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from sweeps import stopping, tracking
from sweeps.diagnose import next_round

COLUMNS = ["run_id", "name", "symptom", "fix", "new_run_id", "new_symptom", "healed_in",
           "fix2", "new_symptom2"]


def verify_fixes(a: Any, uri: str, rounds: int = 1) -> pd.DataFrame:
    """Re-run every unhealthy run of the analysis ``a`` with its prescribed fix (every override
    of the ``fix`` tag, applied together) as a new run tagged with the run it fixes and the fix,
    label it; a rerun still unhealthy, with a fix of its own, gets that fix on top in the next
    round (``rounds`` in all). Returns one row per run fixed: the symptom after each round and
    ``healed_in`` (the round that healed it, 0 if none)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from sweeps.app import apply_fix, execute
    from sweeps.config import config_dir, register_configs

    unhealthy = a.runs["symptom"] != "healthy"
    todo = a.runs[unhealthy & a.runs["overrides"].notna() & (a.runs["fix"] != "")]
    # another script's runs have no overrides to re-run: the report says so
    theirs = int((unhealthy & a.runs["overrides"].isna()).sum())
    rows: list[dict[str, Any]] = []
    if todo.empty:
        empty = pd.DataFrame(columns=COLUMNS)
        empty.attrs["theirs"] = theirs
        return empty
    register_configs()
    GlobalHydra.instance().clear()
    parent, status = None, "FAILED"

    def rerun(overrides: list[str], fix: str, fixes: str, round_: int) -> Any:
        for override in fix.split():  # apply_fix replaces one key=value at a time
            overrides = apply_fix(overrides, override)
        cfg = compose("config", overrides=overrides + [f"tracking.uri={uri}",
                                                       f"tracking.experiment={a.experiment}"])
        outcome = execute(cfg, overrides,
                          parent={"run_id": parent, "experiment_id": a.experiment_id},
                          extra_tags={"sweeps.fixes": fixes, "sweeps.fix": fix,
                                      "sweeps.fix_round": round_})
        return overrides, outcome

    try:
        with stopping.deferred():  # created and known together: a stop closes it KILLED
            parent = tracking.start_parent(uri, a.experiment_id,
                                           f"verify-fixes {time.strftime('%Y-%m-%d_%H-%M-%S')}",
                                           {tracking.TAG_ROLE: "verify"})
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            for _, r in todo.iterrows():
                fix = " ".join(r.fix.split())
                overrides, outcome = rerun(r.overrides.split(), fix, r.run_id, 1)
                d = outcome.diagnosis
                row = {"run_id": r.run_id, "name": r["name"], "symptom": r.symptom, "fix": fix,
                       "new_run_id": outcome.run_id, "new_symptom": d.symptom,
                       "healed_in": 1 if d.symptom == "healthy" else 0, "fix2": "",
                       "new_symptom2": ""}
                if rounds >= 2 and d.symptom != "healthy" and d.fix:
                    lr = compose("config", overrides=r.overrides.split()).optimizer.lr
                    row["fix2"] = " ".join(next_round(lr, fix.split(), d.fix))
                    _, second = rerun(overrides, row["fix2"], r.run_id, 2)
                    row["new_symptom2"] = second.diagnosis.symptom
                    row["healed_in"] = 2 if second.diagnosis.symptom == "healthy" else 0
                rows.append(row)
        status = "FINISHED"
    except BaseException as err:
        status = stopping.status_for(err)  # Ctrl-C: KILLED
        raise
    finally:
        GlobalHydra.instance().clear()
        result = pd.DataFrame(rows, columns=COLUMNS)
        result.attrs["theirs"] = theirs
        healed = int((result["healed_in"] > 0).sum()) if rows else 0
        if parent is not None:
            with stopping.deferred():
                tracking.end_parent(uri, parent, status,
                                    tags={"sweeps.fixed": healed, "sweeps.attempted": len(rows)})
    return result


def verify_report(result: pd.DataFrame) -> str:
    """Per symptom: how many runs the fix healed in round 1, and in round 2 when there was one;
    what the others became; the runs not healed."""
    theirs = int(result.attrs.get("theirs", 0))
    if result.empty and theirs:
        return (f"verify-fixes: nothing re-run: the {theirs} unhealthy run(s) were logged by "
                "another script, which this tool cannot re-run; apply each one's fix (its fix "
                "tag, in that script's own names) in that script")
    if result.empty:
        return "verify-fixes: no unhealthy run with a fix to verify"
    two = bool((result["fix2"] != "").any()) if "fix2" in result else False
    lines = ["verify-fixes: re-ran each unhealthy run with its prescribed fix (all overrides)"
             + ("; a run not healed got its rerun's own fix in round 2" if two else "")]
    for symptom, g in [*result.groupby("symptom"), ("all", result)]:
        r1 = int((g["healed_in"] == 1).sum())
        r2 = int((g["healed_in"] == 2).sum())
        line = f"  {symptom:<12} {r1:>4}/{len(g):<4} became healthy in round 1 ({100 * r1 / len(g):.0f}%)"
        if two:
            line += f", {r1 + r2:>4}/{len(g):<4} after round 2 ({100 * (r1 + r2) / len(g):.0f}%)"
        lines.append(line)
    still = result[result["healed_in"] == 0]
    if not still.empty:  # what the runs not healed became, per symptom
        last = still["new_symptom2"].where(still["new_symptom2"] != "", still["new_symptom"])
        became = still.assign(last=last).groupby(["symptom", "last"]).size()
        lines.append("  not healed, became: " + ", ".join(
            f"{a} -> {b}: {n}" for (a, b), n in became.items()))
    for _, r in result.iterrows():
        if r.healed_in == 2:
            lines.append(f"    healed in round 2: {r['name']} ({r.symptom}) + {r.fix} -> "
                         f"{r.new_symptom} + {r.fix2} -> healthy")
    if theirs:
        lines.append(f"  {theirs} unhealthy run(s) logged by another script: not re-run")
    for _, r in still.head(10).iterrows():
        tail = f" + {r.fix2} -> {r.new_symptom2}" if r.fix2 else ""
        lines.append(f"    not fixed: {r['name']} ({r.symptom}) + {r.fix} -> {r.new_symptom}{tail}")
    return "\n".join(lines)
