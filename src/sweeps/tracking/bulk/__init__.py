"""The bulk path: runs written and read straight on MLflow's tables with Python's sqlite3, many
per transaction, where MLflow's API would make a request or an ORM object per value - and,
for ``sweeps-analyze``, without importing MLflow at all. An optimisation only, taken on a local
SQLite store whose schema (alembic revision) this project was tested against (``gate``);
otherwise MLflow's public API does the same work. tests/test_tracking_differential.py records
the same sweep and analyses both ways and compares every table and artifact.

- ``gate``: when the path may be taken, and the connections (reads; one write transaction);
- ``reads``: experiments, runs, a sweep's children, metric histories;
- ``writes``: whole runs, tags, a run that holds files, files copied into a run's artifacts;
- ``sweep``: around a sweep's runs: its experiment, its parent run, a run's end, one step's
  metrics, the experiment's tags (a sweep into such a store never imports MLflow).
"""

from sweeps.tracking.bulk.gate import TESTED_REVISIONS, Store, schema_revision, store_for
from sweeps.tracking.bulk.reads import (
    Run, children, experiment, experiment_names, find_experiment, histories, runs)
from sweeps.tracking.bulk.sweep import (
    append, create_run, experiment_id, experiment_tags, finished_run, log_metrics, set_experiment_tags,
    terminate)
from sweeps.tracking.bulk.writes import (
    InactiveExperiment, locations, log_dir, run_artifact_uri, set_tags, write_runs)

__all__ = [
    "TESTED_REVISIONS", "InactiveExperiment", "Run", "Store", "append", "children", "create_run", "experiment",
    "experiment_id", "experiment_tags", "locations", "log_metrics", "set_experiment_tags", "terminate",
    "experiment_names", "find_experiment", "finished_run", "histories", "log_dir",
    "run_artifact_uri", "runs",
    "schema_revision", "set_tags", "store_for", "write_runs",
]
