"""How a command's process ends: at once, once its work is written and its status chosen.

Python's own exit tears down every module it imported (torch, MLflow, pandas, matplotlib) one
by one: most of a second after the last line is printed, during which the shell waits and a
Ctrl-C can only be dropped. A command has closed its runs and its store by then, so its entry
point runs the exit handlers (``atexit``: logging, executors, the signal hold), flushes the
streams and ends the process there."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Callable, NoReturn


def run_then_exit(main: Callable[[], object]) -> NoReturn:
    """Run ``main`` (a command's entry point, ending with ``sys.exit`` or returning) and end the
    process with its status. Where a thread other than this one still runs (Python's exit would
    wait for it), the exit is Python's own."""
    try:
        main()
        code: object = 0
    except SystemExit as done:
        code = done.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): Python prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    alive = [t for t in threading.enumerate() if t is not threading.current_thread()
             and not t.daemon]
    if alive or threading.current_thread() is not threading.main_thread():
        sys.exit(code)
    # CPython's own step of a normal exit (private, present since 3.0): the handlers run in
    # reverse order of registration, as they would at interpreter exit.
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach it
            pass
    os._exit(code)
