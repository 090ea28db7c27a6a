"""Credentials in a tracking URI never reach a store, an artifact or the console, however Hydra,
YAML, JSON or URL encoding spelled them: table-driven checks of the one scrubber, and a real
sweep against a real ``mlflow server`` whose database and artifacts are then searched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import run_cli
from servers import mlflow_server
from sweeps import secrets


@pytest.mark.parametrize("text, shown", [
    ("http://u:p4ss@host:5000", "http://host:5000"),
    ("postgresql+psycopg2://mlflow:pw@db.local:5432/mlflow", "postgresql+psycopg2://db.local:5432/mlflow"),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ("text with https://a:b@h/x inside", "text with https://h/x inside"),
    # as Hydra writes an override into overrides.yaml / hydra.yaml
    (r"- tracking.uri=http\://alice\:hunter2@127.0.0.1\:5000", r"- tracking.uri=http\://127.0.0.1\:5000"),
    # ... and once more escaped by YAML's double quotes (hydra.yaml's task overrides)
    (r'task: ["tracking.uri=http\\://alice\\:hunter2@h\\:5000"]', r'task: ["tracking.uri=http\\://h\\:5000"]'),
    # JSON-escaped slashes
    (r'{"uri": "http:\/\/alice:hunter2@h:1\/x"}', r'{"uri": "http:\/\/h:1\/x"}'),
    # percent-encoded whole URI (a query string, a log line)
    ("next=http%3A%2F%2Falice%3Ahunter2%40h%3A1%2Fx", "next=http%3A%2F%2Fh%3A1%2Fx"),
    # YAML quoting, a password holding an @ and a colon
    ("uri: 'https://alice:p@ss:w0rd@host/x'", "uri: 'https://host/x'"),
    ("two http://a:b@h1 and http://c:d@h2", "two http://h1 and http://h2"),
    # no credentials: left alone
    ("mail bob@example.com about http://host/path", "mail bob@example.com about http://host/path"),
])
def test_scrub_every_spelling(text, shown):
    assert secrets.scrub(text) == shown


def test_a_remembered_password_is_masked_wherever_it_appears_alone():
    secrets.remember("http://carol:s%40fe%3Aword9@h:1")
    for text in ("pw s@fe:word9 here", "pw s%40fe%3Aword9 here", r"pw s@fe\:word9 here"):
        assert "word9" not in secrets.scrub(text), text


def _store_text(db: Path) -> str:
    """Every value of every table of an SQLite database, as one text."""
    con = sqlite3.connect(db)
    try:
        parts = []
        for (table,) in con.execute("select name from sqlite_master where type = 'table'"):
            for row in con.execute(f'select * from "{table}"'):
                parts.extend(str(v) for v in row)
        return "\n".join(parts)
    finally:
        con.close()


@pytest.mark.slow
def test_a_password_in_the_tracking_uri_reaches_no_table_artifact_or_console(tmp_path):
    user, password = "alice9user", "p@ss:w0rd/Zq"
    encoded = "p%40ss%3Aw0rd%2FZq"
    forms = (password, encoded, r"p@ss\:w0rd/Zq", "w0rd", user)
    with mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server-artifacts",
                       tmp_path / "server.log") as server:
        uri = f"http://{user}:{encoded}@127.0.0.1:{server.port}"
        sweep = run_cli(["sweep=smoke", f"tracking.uri={uri}", f"paths.output_dir={tmp_path / 'out'}"],
                        tmp_path)
        analysis = run_cli(["--tracking-uri", uri, "--experiment", "smoke", "--no-plots", "--show", "4"],
                           tmp_path, module="sweeps.analyze")
        bad = run_cli(["optimizer.lr=-1", f"tracking.uri={uri}", f"paths.output_dir={tmp_path / 'out'}"],
                      tmp_path, check=False)
    assert "4 finished" in sweep.stdout and bad.returncode == 2
    console = "\n".join(p.stdout + p.stderr for p in (sweep, analysis, bad))
    stored = _store_text(tmp_path / "server.db")
    artifacts = {p: p.read_text(errors="replace") for p in (tmp_path / "server-artifacts").rglob("*")
                 if p.is_file()}
    assert len(artifacts) >= 4 * 4  # config.yaml and three .hydra files per run
    assert "sweeps.overrides" in stored and "127.0.0.1" in stored  # the overrides are there, scrubbed
    for form in forms:
        assert form not in console, f"{form!r} printed"
        assert form not in stored, f"{form!r} in the server's database"
        for path, text in artifacts.items():
            assert form not in text, f"{form!r} in artifact {path}"
