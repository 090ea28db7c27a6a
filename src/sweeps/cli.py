"""The ``sweeps`` command: Hydra's CLI around one job, with errors reduced to one line and a
summary after every multirun, whether or not its jobs failed."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sweeps import callbacks, secrets, stopping, tracking
from sweeps.app import apply_fix, execute, run_job, store_location
from sweeps.config import config_dir, register_configs
from sweeps.errors import one_line
from sweeps.summary import where_to_browse

EXIT_CONFIG = 2  # bad input: nothing was run
EXIT_FAILED = 1  # a job failed


@hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")
def _task(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    if str(hc.mode) != "RunMode.RUN":
        return run_job(cfg)
    # A single run: say what happened, since there is no sweep summary. Its errors leave Hydra
    # as a BaseException, so Hydra adds no report of its own to our one line.
    try:
        out = execute(cfg, list(hc.overrides.task), job_dir=Path(hc.runtime.output_dir))
    except Exception as err:
        raise callbacks.AbortSweep(str(err)) from err
    h, d = out.history, out.diagnosis
    print(f"{out.name}: {d.symptom} after {h.epochs_run} epochs "
          f"(train_loss {h['train_loss'][-1]:.4g}, val_loss {h['val_loss'][-1]:.4g})")
    print(f"  cause: {d.cause}")
    if d.fix:
        fixed = list(hc.overrides.task)
        for override in d.fix:  # the fix is all of its overrides, applied together
            fixed = apply_fix(fixed, override)
        print(f"  fix:   sweeps {' '.join(fixed)}")
    if cfg.tracking.enabled:
        uri, experiment, _ = store_location(cfg)
        print("\n".join(where_to_browse(uri, experiment)), flush=True)
    return out.objective


def main() -> None:
    """Entry point of ``sweeps`` and ``python -m sweeps``."""
    secrets.guard_console()  # no credential reaches the console, whoever prints it
    register_configs()
    # Let exceptions reach us instead of Hydra's multi-line report, so each is one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    stopping.install()  # Ctrl-C and SIGTERM alike: the current run and the sweep end KILLED
    error: BaseException | None = None
    code, message = 0, ""
    try:
        _task()
        stopping.check()  # a stop whose interrupt was dropped (in a finalizer) still ends as one
    except SystemExit as err:  # --help, --cfg and Hydra's own exits
        code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
        if stopping.requested() is not None:
            error = stopping.as_stopped(err)
    except BaseException as err:  # noqa: BLE001 - reported in one line below
        if os.environ.get("SWEEPS_DEBUG") and not stopping.is_stop(err):
            raise
        error = err
        if not stopping.is_stop(err):
            kind, message = one_line(err)
            code = EXIT_CONFIG if kind == "config" else EXIT_FAILED
    if error is not None and stopping.is_stop(error):
        error = stopping.as_stopped(error)
        code = stopping.exit_code(error)
        message = "terminated" if error.signum == signal.SIGTERM else "interrupted"
    try:
        results = callbacks.finish_open_sweeps(error)
    except BaseException as err:  # noqa: BLE001 - the store failed (or a second Ctrl-C) while closing
        results = []
        if stopping.is_stop(err):
            error = error or stopping.as_stopped(err)
            code = code or stopping.exit_code(stopping.as_stopped(err))
            message = message or "interrupted"
        else:
            code = code or EXIT_FAILED
            error = error or err
            message = message or one_line(err)[1]
    reason = tracking.unreachable(error) if error is not None else None
    if reason:  # name the server and say how to resume, not MLflow's urllib3 chain
        message = (str(error) if isinstance(error, tracking.StoreUnreachable)
                   else f"tracking server unreachable ({reason}): {message}")
    if code == 0 and any(not r.ok for r in results):
        code = EXIT_FAILED
    if code == EXIT_FAILED and results:
        message = f"{sum(r.failed for r in results)} job(s) failed; see the summary above"
    stopping.hold()
    if code == 0 and stopping.requested() is not None:  # stopped while closing: done, but say so
        stop = stopping.as_stopped(KeyboardInterrupt())
        code, message = stopping.exit_code(stop), "interrupted" if stop.signum == signal.SIGINT else "terminated"
    if message:
        print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
