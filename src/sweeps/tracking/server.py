"""A tracking server: bounded patience with it, and telling a server that went away from any
other error (a sweep stops then, instead of waiting on a dead server job after job)."""

from __future__ import annotations

from typing import Any, Optional

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


# The route MLflow's own UI reads many runs' histories with (one metric key, at most 100 runs
# and 25,000 values per answer): a request per key and chunk of runs instead of one per run
# and key. Not part of the client's API, so any answer but a list of metrics falls back.
BULK_ROUTE = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
BULK_RUNS = 100
BULK_VALUES = 25000


def histories_bulk(c: Any, run_ids: list[str], keys: list[str],
                   workers: int = 8) -> dict[tuple[str, str], list[dict]]:
    """Every value of each metric in ``keys`` of each run, read through ``BULK_ROUTE`` from the
    tracking server behind MlflowClient ``c``, a request per key and chunk of runs, ``workers``
    side by side: {(run_id, key): [{"step", "timestamp", "value"}, ...]}. A chunk whose answer
    may have been cut at BULK_VALUES is split and asked again (a single run: its own history,
    read as MLflow's client reads it)."""
    from concurrent.futures import ThreadPoolExecutor

    from mlflow.utils.rest_utils import http_request, verify_rest_response

    creds = c._tracking_client.store.get_host_creds()

    def ask(job: tuple[str, list[str]]) -> Optional[list[dict]]:
        """The values of one key for a chunk of runs; None: perhaps cut short, split it."""
        key, chunk = job
        resp = verify_rest_response(http_request(
            creds, BULK_ROUTE, "GET", params={"run_id": chunk, "metric_key": key,
                                              "max_results": BULK_VALUES}), BULK_ROUTE)
        metrics = resp.json().get("metrics", [])
        if not isinstance(metrics, list):
            raise ValueError(f"{BULK_ROUTE}: unexpected answer")
        if len(metrics) < BULK_VALUES:
            return metrics
        if len(chunk) > 1:
            return None
        return [{"run_id": chunk[0], "step": m.step, "timestamp": m.timestamp, "value": m.value}
                for m in c.get_metric_history(chunk[0], key)]

    out: dict[tuple[str, str], list[dict]] = {}
    todo = [(key, run_ids[i:i + BULK_RUNS]) for key in keys
            for i in range(0, len(run_ids), BULK_RUNS)]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
        while todo:
            jobs, todo = todo, []
            for (key, chunk), metrics in zip(jobs, pool.map(ask, jobs)):
                if metrics is None:
                    half = len(chunk) // 2
                    todo += [(key, chunk[:half]), (key, chunk[half:])]
                    continue
                for m in metrics:
                    out.setdefault((m["run_id"], key), []).append(m)
    return out
