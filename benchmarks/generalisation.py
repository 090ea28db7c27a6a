"""Score the labeller (sweeps.diagnose) on training runs it was never tuned on: a corpus of real
runs from set-ups the diagnostic preset does not use, each with a ground truth that does not
come from the labeller.
  python benchmarks/generalisation.py            # build the corpus if missing, score both parts
  python benchmarks/generalisation.py --rebuild  # rebuild it, one family at a time
  python benchmarks/generalisation.py --jobs 2   # build what is missing 2 families at a time
                                                 # (all 22: 47 min on 2 busy cores)
  python benchmarks/generalisation.py -v         # also list every disagreement with its measures
  python benchmarks/generalisation.py --part calibration -v  # what a tuning session looks at
  python benchmarks/generalisation.py --verify-fixes   # also: do the fixes heal (2 rounds)?
  python benchmarks/generalisation.py --part calibration --verify-fixes --jobs 2  # 2-way
  python benchmarks/generalisation.py --baseline  # as if every run logged its baseline_loss
  python benchmarks/generalisation.py --no-baseline  # as if none did (the runner's neither)
  python benchmarks/generalisation.py --family preset  # the diagnostic preset, cached likewise
  pip install -e ".[bench]"                      # scikit-learn, for its bundled data sets

The corpus (benchmarks/corpus/families.py) is a list of set-up FAMILIES; each family is wholly in
the calibration part (thresholds may be tuned on it) or in the test part (never looked at while
tuning). The test part's totals have been printed after every pass since the fourth session, so
the tenth added a part "fresh" (iris), defined after that tuning and never tuned on; a family
built at the same time (moons) was scored once held out and then moved to calibration. The
eleventh did the same before its tuning (friedman held out, blobs moved) and after it (circles
held out, noisy-labels moved), the twelfth before its tuning (sparse-regression held out,
hastie moved), the thirteenth (digits-gru, a recurrent net, held out), and the fifteenth
(swiss-roll held out before sparse-regression, scored held out three times, moved to calibration
to learn its blow-ups from), and the sixteenth (quantiles, heavy-ball momentum in every run, held
out to judge momentum rules on, and its counterpart momentum-classes in calibration to fit them
on): each new family's first score is reported in benchmarks/README.
It is cached under outputs/generalisation/ (histories and truth, one JSON per family),
so scoring after a labeller change takes seconds (continuation truth is cached as the
continuations' curves and judged when scoring).

Ground truth, written before any tuning. T: the run's epochs; L0: its first train loss.
Where the model is linear in its parameters and trained by this project's loop (families
runner-*, models linear and poly) the preset's analytic truth is used unchanged
(benchmarks/ground_truth.py: the exact recurrence for SGD/momentum, a replay otherwise).
Everywhere else the truth comes from continuation runs of the same set-up (same seed):
  C    the same run for 10 T epochs (a schedule stretched over 10 T),
  K    with a schedule: its starting lr kept constant for 10 T epochs (annealing that freezes a
       run is no excuse for a stall),
  Hi   the lr x 10 for T epochs (the 0.1x probe answers nothing these rules ask: a swing
       that a smaller lr removes is still a swing, and is not run).
L_ref, what more time or a bolder lr removes: the lowest finite train loss of the run, C, K, Hi.
Reducible loss R = L0 - L_ref. Rules, first match wins:
  diverged     the run's losses become non-finite, or it ends >= GROWTH x L0 (whatever more
               time does: it blew up in the window judged); or it ends at or above L0 and C
               becomes non-finite or ends >= GROWTH x L0 (it grows without bound). The second
               clause is applied to the analytic truth too (its diverged rule for a schedule
               looks only at 10 T, where a decayed lr may have stopped the growth).
  oscillating  in the run's second half the train loss climbs back above its running minimum by
               >= SWING x R, or (a loss spanning decades) back to >= DECADE_SWING x its
               running minimum while that climb is >= MIN_CLIMB x R; and it keeps
               swinging: C's last T epochs climb back by the same measure (or C blows up).
  overfitting  the validation loss, smoothed (running median of 5), ends >= VAL_RISE above its
               minimum and by >= VAL_NOISE x its epoch-to-epoch jitter, the minimum reached
               >= max(5, 20% of T) epochs before the end, after val fell >= VAL_MATERIAL of its
               start; the smoothed train loss fell >= TRAIN_FALL x R after that minimum; and C
               confirms it: C's val at 10 T is still >= VAL_RISE above that minimum (not a dip
               that more training recovers). Checked before stalled: once val has turned up,
               more time hurts what the run is for, whatever train could still remove.
  stalled      the run removed less than STALL = 1 - 1/e of R: L0 - L_T < STALL x R, with L_T
               the last value of the train loss's running median of 3 (it did not get through
               one time constant of what more time or a 10x lr removes); or (added in the
               sixth session, see below) L_ref >= (1 - CHANCE) x L_const, CHANCE = 0.05.
  healthy      otherwise.
L_const, the training loss of the best constant prediction (the entropy of the class
frequencies for cross-entropy and BCE, the targets' variance for MSE, on the run's own training
split): a run that neither it, C, K nor Hi takes clearly below L_const learned nothing from its
inputs (saturated or dead units, raw features) and is stalled, "loss barely moves ... vanishing
gradients" in the symptom table, whatever more time or a 10x lr does; the first five sessions'
rules called such a run healthy once it had levelled off at chance. Every data set in the corpus
is learnable far below L_const (a linear model on normalised inputs gets there).
What the labeller is given: each run's curves (train and val loss; gradient norms where the
batch is full) and its config. Since the seventh session this project's runner records
data.baseline_loss, L_const itself (the targets' variance), and the runner families' runs carry
it; the custom trainer's runs stand for another script's and do not, unless --baseline asks what
a script that logs a baseline_loss param would get. Both are reported.
The cause: with zero_grad() missing (train.zero_grad false) an unhealthy run's cause is that bug,
and the labeller must name it (in its cause or fix); otherwise the cause is the symptom's own
(lr too high: diverged/oscillating, lr too low: stalled, memorising: overfitting), and is right
when the label is right and zero_grad is not blamed wrongly.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpus import families as fam, score as scoring  # noqa: E402
from corpus.score import BASELINE_SOURCES, report, score  # noqa: E402

CACHE = ROOT / "outputs" / "generalisation"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rebuild", action="store_true", help="rebuild every family's cache")
    ap.add_argument("--family", action="append", default=[],
                    help="only these families (repeatable); default: all")
    ap.add_argument("--cache", default=str(CACHE), help="where the corpus is cached")
    ap.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="N processes (each trains on one thread): build the families not "
                    "cached yet N at a time; with --verify-fixes, re-run the fixes N-way")
    ap.add_argument("--part", choices=["calibration", "test", "fresh"],
                    help="only the families of this part (tune with --part calibration)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every disagreement")
    ap.add_argument("--verify-fixes", action="store_true",
                    help="re-run every run labelled unhealthy with its fix (2 rounds); heal rates")
    ap.add_argument("--baseline", action="store_true",
                    help="give every run its baseline loss (the loss of the best constant "
                    "prediction), as a script that logs baseline_loss would; default: only this "
                    "project's runner's runs, which record it")
    ap.add_argument("--no-baseline", action="store_true",
                    help="give no run its baseline loss, this project's runner's included, as "
                    "if every run came from a script that does not log one")
    ap.add_argument("--val-every", type=int, default=1, metavar="K",
                    help="score as if validation were logged every K epochs only (NaN between), "
                    "as a script that evaluates every K epochs logs it")
    ap.add_argument("--val-phase", type=int, default=0, metavar="P",
                    help="with --val-every: the first epoch validation is logged at (0..K-1)")
    args = ap.parse_args(argv)
    if args.val_every < 1 or not 0 <= args.val_phase < args.val_every:
        print(f"--val-every={args.val_every} --val-phase={args.val_phase}: need K >= 1 and "
              "0 <= P < K", file=sys.stderr)
        return 2
    scoring.VAL_EVERY, scoring.VAL_PHASE = args.val_every, args.val_phase
    if args.jobs < 1:
        print(f"--jobs={args.jobs}: need a number of processes >= 1", file=sys.stderr)
        return 2
    if args.baseline and args.no_baseline:
        print("--baseline and --no-baseline: choose one", file=sys.stderr)
        return 2
    if args.baseline:
        BASELINE_SOURCES.add("custom")
    if args.no_baseline:
        BASELINE_SOURCES.clear()
    known = fam.FAMILIES + [fam.PRESET]
    names = args.family or [f.name for f in fam.FAMILIES if args.part in (None, f.part)]
    allowed = [f.name for f in known if args.part in (None, f.part)]
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        print(f"--family={unknown[0]!r}: must be one of {allowed}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    todo = [f.name for f in known if f.name in names
            and (args.rebuild or not (Path(args.cache) / f"{f.name}.json").exists())]
    if args.jobs > 1 and len(todo) > 1:
        _build_in_parallel(todo, Path(args.cache), args.jobs)
        args.rebuild = False  # built just now: the loop below reads the cache
    runs: list[dict[str, Any]] = []
    for f in known:
        if f.name in names:
            runs += fam.load_or_build(f, Path(args.cache), rebuild=args.rebuild)
    built = time.perf_counter() - start
    scored = score(runs)
    print(report(scored, verbose=args.verbose))
    kinds = Counter(r["part"] for r in runs)
    if args.verify_fixes:
        from corpus.fixes import heal_report

        print(heal_report(_heal(scored, args.jobs), verbose=args.verbose))
    print(f"\n{len(runs)} runs ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}); "
          f"corpus ready in {built:.0f} s, scored in {time.perf_counter() - start - built:.1f} s")
    return 0


def _build_one(name: str, cache: Path) -> str:
    fam.load_or_build(next(f for f in fam.FAMILIES + [fam.PRESET] if f.name == name), cache,
                      rebuild=True)
    return name


def _build_in_parallel(names: list[str], cache: Path, jobs: int) -> None:
    """Build these families' caches, ``jobs`` processes at a time (spawned: torch must not be
    forked mid-use); each family is one process's work and writes its own file."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        for name in pool.map(_build_one, names, [cache] * len(names)):
            print(f"cached {name}", file=sys.stderr)


def _heal(scored: list[dict[str, Any]], jobs: int) -> list[dict[str, Any]]:
    """corpus.fixes.heal() on the scored runs, split across ``jobs`` spawned processes (every
    jobs-th run to each, so each gets a share of every family); the results in corpus order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from corpus.fixes import heal, to_heal

    rows = [r for r in scored if to_heal(r)]
    if jobs <= 1 or len(rows) < 2:
        return heal(rows)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        parts = list(pool.map(heal, [rows[i::jobs] for i in range(jobs)]))
    return [parts[k % jobs][k // jobs] for k in range(len(rows))]


if __name__ == "__main__":
    sys.exit(main())
