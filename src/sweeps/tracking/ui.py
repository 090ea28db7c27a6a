"""What makes the MLflow UI land on a sweep's results: the URL of its runs, an experiment that
describes itself, and a parent run with metrics and images for the chart view and run page."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Optional
from urllib.parse import urlsplit

from sweeps.secrets import scrub
from sweeps.tracking import bulk
from sweeps.tracking.store import (
    MAX_METRICS_PER_BATCH, MAX_TAG_VALUE, TAG_NOTE, chunks, client, metric_value, now_ms)

UI_PORT = 5000  # where `mlflow ui` listens unless told otherwise
TAG_NOTE_SHA = "sweeps.note_sha"  # experiment tag: hash of the description this tool wrote last


def runs_url(uri: str, exp_id: str, port: int = UI_PORT) -> Optional[str]:
    """The experiment's runs in the UI's "Model training" view (MLflow 3 opens its GenAI view
    unless the URL says otherwise): on the tracking server itself, without any user:password
    or query, or on ``mlflow ui`` at 127.0.0.1:<port> for a store it opens. None for Databricks."""
    parts = urlsplit(uri)
    if parts.scheme == "databricks" or uri == "databricks":
        return None
    if parts.scheme in ("http", "https"):
        host = parts.netloc.rsplit("@", 1)[-1]
        base = f"{parts.scheme}://{host}{parts.path.rstrip('/')}"
    else:
        base = f"http://127.0.0.1:{port}"
    return f"{base}/#/experiments/{exp_id}/runs?workflowType=machine_learning"


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_experiment(uri: str, exp_id: str, text: str) -> bool:
    """Set the experiment's description (markdown, shown with the experiment in the UI), unless
    someone wrote their own: a description is replaced only when it is the one this tool wrote
    last. Returns True when it wrote it."""
    store = bulk.store_for(uri)
    tags = bulk.experiment_tags(store, exp_id) if store is not None else client(uri).get_experiment(exp_id).tags
    current = tags.get(TAG_NOTE)
    if current and current != text and tags.get(TAG_NOTE_SHA) != _sha(current):
        return False
    note = scrub(text)[:MAX_TAG_VALUE]
    if store is not None:
        bulk.set_experiment_tags(store, exp_id, {TAG_NOTE: note, TAG_NOTE_SHA: _sha(note)})
        return True
    c = client(uri)
    c.set_experiment_tag(exp_id, TAG_NOTE, note)
    c.set_experiment_tag(exp_id, TAG_NOTE_SHA, _sha(note))
    return True


def log_results(uri: str, run_id: str, metrics: Mapping[str, float], images: Iterable[Path] = ()) -> None:
    """Log metrics (at step 0) on a run, and images under their file's stem as the key: the run
    page's "Model metrics" and the experiment's chart view draw both."""
    ts = now_ms()
    store = bulk.store_for(uri)
    if store is not None and metrics:
        bulk.log_metrics(store, run_id, {k: float(v) for k, v in metrics.items()}, ts)
    elif metrics:
        from mlflow.entities import Metric

        ms = [Metric(k, metric_value(float(v)), ts, 0) for k, v in metrics.items()]
        for chunk in chunks(ms, MAX_METRICS_PER_BATCH):
            client(uri).log_batch(run_id, metrics=chunk, synchronous=True)
    images = list(images)
    if images:
        from PIL import Image

        c = client(uri)
        for path in images:
            with Image.open(path) as im:
                c.log_image(run_id, im.convert("RGB"), key=Path(path).stem, step=0, synchronous=True)
