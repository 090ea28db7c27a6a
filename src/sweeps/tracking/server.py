"""A tracking server: bounded patience with it, and telling a server that went away from any
other error (a sweep stops then, instead of waiting on a dead server job after job)."""

from __future__ import annotations

from typing import Optional

from sweeps.secrets import scrub


# Bounded patience with a tracking server: MLflow's defaults (120 s timeout, 7 retries with
# back-off) turn a server that went away into a hang of many minutes. Users may override them.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    # MLflow prints "View run <name> at: <server URL>" per run: noise, and the URL may carry a
    # password. The summary prints where to browse, scrubbed.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


class StoreUnreachable(BaseException):
    """The tracking server cannot be reached. A BaseException: Hydra's launchers record an
    ``Exception`` as one failed job and start the next, which would wait on the same dead server."""


def unreachable(err: BaseException) -> Optional[str]:
    """Why the tracking server could not be reached (``connection refused``, ``timed out``,
    ``server errors``) when that is what ``err`` or an exception behind it says; else None."""
    import requests

    seen: list[BaseException] = []
    cur: Optional[BaseException] = err
    while cur is not None and cur not in seen:
        seen.append(cur)
        if isinstance(cur, StoreUnreachable):
            return str(cur)
        if isinstance(cur, requests.exceptions.Timeout):
            return "timed out"
        if isinstance(cur, requests.exceptions.ConnectionError):
            text = str(cur).lower()
            if "refused" in text:
                return "connection refused"
            return "timed out" if "timed out" in text else "connection failed"
        if isinstance(cur, requests.exceptions.RetryError):
            return "server errors"
        cur = cur.__cause__ or cur.__context__
    return None


def store_unreachable(uri: str, err: BaseException) -> StoreUnreachable:
    """The one-line error of a sweep stopped because its tracking server went away."""
    return StoreUnreachable(
        f"tracking server {scrub(uri)} unreachable ({unreachable(err)}); the sweep stopped. "
        "When the server is back, run the same command again: finished runs are skipped"
    )
