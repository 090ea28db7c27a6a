"""`generalisation.py --verify-fixes --jobs N` re-runs the fixes in N processes: every run gets
the same reruns and the same symptom after each round as in one process, reported in the
corpus's order (the per-run listing of -v must not depend on N)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import generalisation  # noqa: E402
from corpus import families as fam  # noqa: E402
from corpus.fixes import heal, to_heal  # noqa: E402
from corpus.score import score  # noqa: E402


def _runs(n: int) -> list:
    """n runs of the runner-seeds family (this project's loop: no benchmark extra needed),
    spread over its grid, trained for real with their truth."""
    seeds = next(f for f in fam.FAMILIES if f.name == "runner-seeds")
    specs = seeds.specs()
    picked = specs[:: max(len(specs) // n, 1)][:n]
    return fam.build(fam.Family(seeds.name, seeds.part, seeds.source, lambda: picked))


def test_fixes_verified_in_parallel_match_one_process_in_corpus_order():
    scored = score(_runs(7))
    unhealthy = [r for r in scored if to_heal(r)]
    assert len(unhealthy) >= 3, [r["label"] for r in scored]  # split 2 ways, unevenly
    serial = heal(unhealthy)
    parallel = generalisation._heal(scored, 2)
    assert [x["name"] for x in parallel] == [x["name"] for x in serial]
    assert [(x["round1"], x["round2"], x["fix1"], x["fix2"]) for x in parallel] == \
        [(x["round1"], x["round2"], x["fix1"], x["fix2"]) for x in serial]
