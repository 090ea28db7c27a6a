"""Where the summary sends people: the runs URL of an experiment in the MLflow UI's Model
training view, for a local store and for a tracking server (never with its credentials)."""

from __future__ import annotations

import pytest

from sweeps import tracking
from sweeps.summary import experiment_note, parent_note, swept, where_to_browse

ML = "runs?workflowType=machine_learning"


@pytest.mark.parametrize("uri, url", [
    ("sqlite:////data/outputs/mlflow.db", f"http://127.0.0.1:5000/#/experiments/7/{ML}"),
    ("postgresql+psycopg2://u:secret@db:5432/mlflow", f"http://127.0.0.1:5000/#/experiments/7/{ML}"),
    ("http://mlflow.internal:5000", f"http://mlflow.internal:5000/#/experiments/7/{ML}"),
    ("https://alice:s3cret@mlflow.example.com/mlflow/", f"https://mlflow.example.com/mlflow/#/experiments/7/{ML}"),
    ("http://bob:pw@127.0.0.1:8080?token=abc", f"http://127.0.0.1:8080/#/experiments/7/{ML}"),
    ("databricks", None),
])
def test_runs_url(uri, url):
    assert tracking.runs_url(uri, "7") == url


def test_where_to_browse_server_and_local():
    server = where_to_browse("https://alice:s3cret@mlflow.example.com", "smoke", "3")
    assert server == ["  store: https://mlflow.example.com (experiment 'smoke')",
                      f"  runs: https://mlflow.example.com/#/experiments/3/{ML}"]
    assert not any("s3cret" in line or "alice" in line for line in server)
    local = where_to_browse("sqlite:////x/mlflow.db", "smoke", "3")
    assert local[1:] == ["  browse: mlflow ui --backend-store-uri sqlite:////x/mlflow.db",
                         f"  then open: http://127.0.0.1:5000/#/experiments/3/{ML}"]


def test_swept_takes_the_command_lines_values_over_the_presets():
    grid = swept({"optimizer.lr": "0.03,1.5", "train.zero_grad": "true,false"},
                 ["optimizer.lr=0.1,0.2,0.3", "train.zero_grad=true", "data.noise=0,0.5"])
    assert grid == ["optimizer.lr=0.1,0.2,0.3", "data.noise=0,0.5"]


def test_notes_are_markdown_with_what_to_type():
    note = experiment_note("adhoc", ["optimizer.lr=0.1,1"], 2, f"http://127.0.0.1:5000/#/experiments/2/{ML}")
    assert note.startswith("**Training runs of `sweeps`, not traces: open [the runs table]"
                           f"(#/experiments/2/{ML})**")
    assert "`optimizer.lr=0.1,1`" in note and "tags.symptom = 'diverged'" in note
    md = parent_note("sweep 'x': 3 jobs", {"healthy": 2, "diverged": 1}, {"healthy": "a", "diverged": "b"},
                     "a (val_loss 0.1)", ["c: RuntimeError: boom"], ["symptom_map_linear.png"])
    assert "| `healthy` | 2 | a |\n| `diverged` | 1 | b |" in md
    assert "Best healthy run: a (val_loss 0.1)" in md and "- c: RuntimeError: boom" in md
    assert "`symptom_map_linear.png`" in md
