"""Stopping a sweep: Ctrl-C (SIGINT) and SIGTERM handled alike, in one place.

The handler records the request and raises ``Stopped``; inside a ``deferred()`` region (a store
write) or a ``recorded()`` one (importing native code) it only records it, and the region calls
``check()`` at its next safe point. Since Python
drops an exception raised inside a finalizer, and a signal may cut a wait short inside a library
that reports it as some other error, every launcher also calls ``check()`` between jobs and
between bulk chunks, and ``status_for`` treats any error raised after a request as the stop.
"""

from __future__ import annotations

import atexit
import signal
import sys
from contextlib import contextmanager
from typing import Iterator, NoReturn, Optional

_requested: Optional[int] = None  # the signal number of the first request
_deferred = 0  # depth of the regions that call check() themselves
_held = False  # the command is ending: a signal is only recorded
_quiet = 0  # depth of the regions where no signal raises (native code may be calling Python)
_exit_hook = False  # install() registered _ignore to run at exit


class Stopped(KeyboardInterrupt):
    """The process was asked to stop. A KeyboardInterrupt, so ``except Exception`` in Hydra,
    MLflow and the launchers lets it through."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def install() -> None:
    """Handle SIGINT and SIGTERM with ``_handle`` (the CLI's main thread), and ignore them once
    the interpreter exits: Python's finalization puts back the default action of a signal whose
    handler is a Python function, so a Ctrl-C in the last milliseconds would kill a command that
    has done its work and chosen its exit status (exit -2 instead of it)."""
    global _exit_hook
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handle)
    if not _exit_hook:
        atexit.register(_ignore)
        _exit_hook = True


def _ignore() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(signum, signal.SIG_IGN)
        except ValueError:  # not the main thread
            return


def _handle(signum: int, frame: object) -> None:
    first = request(signum)
    if _held or _quiet or (_deferred and first):
        return  # the region stops at its next check(); a second signal does not wait
    raise Stopped(signum)


def request(signum: int) -> bool:
    """Record a request to stop, as the handler does; True when it is the first."""
    global _requested
    first = _requested is None
    if first:
        _requested = int(signum)
    return first


def requested() -> Optional[int]:
    """The signal that asked this process to stop, or None."""
    return _requested


def check() -> None:
    """Raise ``Stopped`` when a stop was requested: a safe point (between jobs, chunks, writes)."""
    if _requested is not None:
        raise Stopped(_requested)


@contextmanager
def deferred() -> Iterator[None]:
    """A region (a store transaction) that a signal must not cut in half: the stop is raised
    when the region ends."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
    if _deferred == 0:
        check()


@contextmanager
def recorded() -> Iterator[None]:
    """A region where a signal is only recorded, however many arrive, and the stop is raised when
    it ends: importing torch, whose native start-up calls Python code through pybind11; an
    exception raised there aborts the process (SIGABRT, 'terminate called after throwing an
    instance of pybind11::error_already_set') instead of unwinding."""
    global _quiet
    _quiet += 1
    try:
        yield
    finally:
        _quiet -= 1
    if _quiet == 0 and not _deferred:
        check()


def hold() -> None:
    """From now on a signal is only recorded: the command has done its work and is exiting (an
    interrupt raised while Python shuts down would kill it with a traceback)."""
    global _held
    _held = True


def is_stop(error: Optional[BaseException]) -> bool:
    """True when ``error`` is the stop, or was raised after one was requested (a wait the signal
    cut short: sqlite3 reports it as 'database is locked')."""
    return isinstance(error, KeyboardInterrupt) or (error is not None and _requested is not None)


def status_for(error: Optional[BaseException]) -> str:
    """The MLflow status of a run that ended with ``error`` (None: it ended normally)."""
    if error is None:
        return "FINISHED"
    return "KILLED" if is_stop(error) else "FAILED"


def as_stopped(error: BaseException) -> Stopped:
    """``error`` as the Stopped it stands for (see ``is_stop``)."""
    if isinstance(error, Stopped):
        return error
    return Stopped(_requested or signal.SIGINT)


def exit_code(error: Stopped) -> int:
    """The shell's code for a process ended by a signal: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + error.signum


def leave(error: BaseException) -> NoReturn:
    """End a command stopped before (or outside) its own error handling: one line, exit 130 for
    Ctrl-C and 143 for SIGTERM; nothing is printed or raised for a signal after this."""
    stop = as_stopped(error)
    hold()
    print("error: interrupted" if stop.signum == signal.SIGINT else "error: terminated",
          file=sys.stderr)
    sys.exit(exit_code(stop))


def reset() -> None:
    """Forget a request (a process that handles several commands, e.g. tests)."""
    global _requested, _deferred, _held, _quiet
    _requested, _deferred, _held, _quiet = None, 0, False, 0
