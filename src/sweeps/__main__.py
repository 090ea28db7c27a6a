"""``sweeps`` and ``python -m sweeps``: Ctrl-C and SIGTERM are handled from the first moment,
before the heavy imports (torch, Hydra, MLflow) of the command itself."""

from sweeps import stopping


def main() -> None:
    """Entry point of ``sweeps`` and ``python -m sweeps``."""
    try:
        stopping.install()
        with stopping.recorded():  # torch's native start-up must not see an exception
            from sweeps.cli import main as run
        run()  # ends with sys.exit; a stop escapes it only before its own handling begins
    except KeyboardInterrupt as stop:  # stopped while starting (Python's own Ctrl-C before the
        stopping.leave(stop)           # handler is in): nothing was written


def entry() -> None:
    """The console script: ``main``, then the process ends at once (exiting.py)."""
    from sweeps.exiting import run_then_exit

    run_then_exit(main)


if __name__ == "__main__":
    entry()
