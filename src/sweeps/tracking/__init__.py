"""The only package that talks to MLflow.

- ``store``: where the store is (URIs, the client, experiments) and the helpers shared below;
- ``server``: bounded patience with a tracking server, and telling one that went away;
- ``seed``: new SQLite stores copied from an empty one instead of migrated from scratch;
- ``runs``: writing a run (RunLog), through MLflow's public API or in bulk;
- ``bulk``: the same writes and reads straight on MLflow's tables with sqlite3, on a local store
  of a tested schema only (``sweeps-analyze`` then never imports MLflow);
- ``read``: reading runs and histories back, and what the analysis writes afterwards;
- ``ui``: what lands a user on the results in the MLflow UI (runs URL, descriptions, images).
"""

from sweeps.secrets import scrub
from sweeps.tracking.read import (
    children, experiment_names, find_experiment, finished_configs, finished_run, histories,
    log_dir, repair_stale, run_of, runs_tagged, search_all, set_tags)
from sweeps.tracking.runs import (
    RunLog, end_parent, experiment_id, finish_many, params_for, run, set_status, start_parent)
from sweeps.tracking.store import (
    MAX_METRICS_PER_BATCH, MAX_PARAM_VALUE, MAX_PARAMS_TAGS_PER_BATCH, MAX_TAG_VALUE, PRIVATE_KEYS,
    TAG_ERROR, TAG_HASH, TAG_HOST, TAG_NOTE, TAG_PARENT, TAG_PID, TAG_ROLE, TAG_SWEEP_DIR, ChildRow,
    check_writable, client, default_uri, delete_run, local_store_path, resolve_uri, seed_sqlite)
from sweeps.tracking.server import StoreUnreachable, store_unreachable, unreachable
from sweeps.tracking.ui import TAG_NOTE_SHA, UI_PORT, describe_experiment, log_results, runs_url

__all__ = [
    "MAX_METRICS_PER_BATCH", "MAX_PARAM_VALUE", "MAX_PARAMS_TAGS_PER_BATCH", "MAX_TAG_VALUE",
    "PRIVATE_KEYS", "TAG_ERROR", "TAG_HASH", "TAG_HOST", "TAG_NOTE", "TAG_PARENT", "TAG_PID",
    "TAG_ROLE", "TAG_SWEEP_DIR", "ChildRow", "RunLog", "StoreUnreachable", "check_writable",
    "children", "client", "default_uri", "delete_run", "end_parent", "experiment_id",
    "experiment_names",
    "find_experiment", "finish_many", "finished_configs", "finished_run", "histories", "local_store_path",
    "log_dir", "params_for", "repair_stale", "resolve_uri", "run", "run_of", "runs_tagged", "scrub",
    "search_all",
    "seed_sqlite", "set_status", "set_tags", "start_parent", "store_unreachable", "unreachable",
    "TAG_NOTE_SHA", "UI_PORT", "describe_experiment", "log_results", "runs_url",
]
