"""The generalisation benchmark's command line refuses bad input with one line that names the
option, its value and what is allowed, before it builds or scores anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "generalisation.py"


@pytest.mark.parametrize("args,named", [(["--jobs", "0"], "--jobs=0"),
                                        (["--jobs", "-3"], "--jobs=-3")])
def test_a_number_of_jobs_below_one_is_refused(tmp_path, args, named):
    out = subprocess.run([sys.executable, str(SCRIPT), "--cache", str(tmp_path), *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and ">= 1" in lines[0], out.stderr
    assert list(tmp_path.iterdir()) == []  # nothing built, nothing cached
