"""The progress line and its markers, as written for a non-terminal."""

from __future__ import annotations

import pytest

from sweeps.progress import line, mark_job, read_marks


def test_marks_are_counted_by_status_and_symptom(tmp_path):
    mark_job(str(tmp_path), 0, "FINISHED", "healthy")
    mark_job(str(tmp_path), 1, "FINISHED", "diverged")
    mark_job(str(tmp_path), 2, "FAILED")
    mark_job(str(tmp_path), 3, "SKIPPED")
    mark_job(str(tmp_path), 1, "FINISHED", "healthy")  # a re-run job overwrites its marker
    c = read_marks(str(tmp_path))
    assert (c["FINISHED"], c["FAILED"], c["SKIPPED"]) == (2, 1, 1)
    assert (c["symptom:healthy"], c["symptom:diverged"]) == (2, 0)


@pytest.mark.parametrize("counts, total, elapsed, expected", [
    ({"FINISHED": 3, "symptom:healthy": 2, "symptom:stalled": 1}, 12, 6.0,
     "3/12 done, 0 failed, 0 skipped | 2 healthy, 1 stalled | 6 s elapsed, ~18 s left"),
    ({"FINISHED": 1, "SKIPPED": 3, "symptom:healthy": 1}, 8, 2.0,
     "4/8 done, 0 failed, 3 skipped | 1 healthy | 2 s elapsed, ~8 s left"),
    ({"FAILED": 2}, None, 1.0, "2 done, 2 failed, 0 skipped | 1 s elapsed"),
    ({}, 4, 0.0, "0/4 done, 0 failed, 0 skipped | 0 s elapsed"),
])
def test_line(counts, total, elapsed, expected):
    from collections import Counter

    assert line(Counter(counts), total, elapsed) == expected
