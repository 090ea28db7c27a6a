"""The commands end at once once their work is done (sweeps/exiting.py): the status they chose,
every line they printed (to a pipe too), the exit handlers run; a thread still working is
waited for, as Python's own exit would."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import atexit, sys, threading, time
from sweeps.exiting import run_then_exit
mode, marker = sys.argv[1], sys.argv[2]
atexit.register(lambda: open(marker, "w").write("handlers ran"))
def main():
    sys.stdout.write("x" * 200000)  # more than a pipe buffer, no newline: flushed at the end
    if mode == "thread":
        def late():
            time.sleep(0.5)
            print("thread done", file=sys.stderr)
        threading.Thread(target=late).start()
    if mode == "message":
        sys.exit("error: a message")
    if mode != "return":
        sys.exit(3)
run_then_exit(main)
"""


@pytest.mark.parametrize("mode,code", [("exit", 3), ("return", 0), ("message", 1), ("thread", 3)])
def test_the_status_the_output_and_the_handlers_survive(tmp_path, mode, code):
    marker = tmp_path / "marker"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode, str(marker)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == "x" * 200000
    assert marker.read_text() == "handlers ran"
    if mode == "message":
        assert proc.stderr.strip() == "error: a message"
    if mode == "thread":  # a thread still working is waited for
        assert "thread done" in proc.stderr


PROBE = """
import os, sys
class Late:
    def __del__(self):  # a global of __main__: freed only by the interpreter's teardown
        os.write(2, b"module teardown ran\\n")
late = Late()
from sweeps.__main__ import entry, main
which = sys.argv[1]
sys.argv = ["sweeps", *sys.argv[2:]]
(entry if which == "entry" else main)()
"""


@pytest.mark.parametrize("which", ["entry", "main"])
def test_a_command_ends_without_the_interpreters_teardown(tmp_path, which):
    """The console script (``entry``, also ``python -m sweeps``) ends the process once the run is
    recorded: Python's teardown of every module, most of a second, does not run (a global of
    __main__ that only the teardown frees says so). ``main`` alone, what tests call in-process,
    keeps Python's own exit."""
    proc = subprocess.run([sys.executable, "-c", PROBE, which,
                           f"paths.output_dir={tmp_path / 'out'}", "train.epochs=5"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "store: sqlite:" in proc.stdout
    assert ("module teardown ran" in proc.stderr) == (which == "main")
