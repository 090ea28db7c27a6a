"""Slow end-to-end: what a person sees. A smoke sweep, then the MLflow UI over its store opened in
headless Chromium: the experiment, each run by name, and its ``symptom`` tag in the runs table."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import ROOT, run_cli
from servers import mlflow_server

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that phones home or updates itself (the machine may have no network).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = ROOT / "outputs" / "ui_screenshot.png"  # outputs/ is git-ignored
TIMEOUT_MS = 30_000

# MLflow 3 runs table (ag-grid): one row per run id, one column per attribute/param/tag.
NAME_COL = "[col-id='attributes.`Run Name`']"
SYMPTOM_COL = "[col-id='tags.`symptom`']"


def _row(page, run_id: str, col: str):
    return page.locator(f"[role=row][row-id='{run_id}'] [role=gridcell]{col}")


def test_mlflow_ui_shows_runs_and_symptoms(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found; `apt-get install chromium` (as .ci/run does)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is in the test extras: pip install -e '.[test]'")
    out = tmp_path / "out"
    run_cli(["sweep=smoke", f"paths.output_dir={out}"], tmp_path)

    with mlflow_server(f"sqlite:///{out / 'mlflow.db'}", tmp_path / "server-artifacts",
                       tmp_path / "server.log") as server:
        c = MlflowClient(server.uri)
        exp = c.get_experiment_by_name("smoke")
        runs = c.search_runs([exp.experiment_id])
        parent = next(r for r in runs if r.data.tags.get("sweeps.role") == "parent")
        kids = {r.info.run_id: (r.info.run_name, r.data.tags["symptom"])
                for r in runs if r.data.tags.get("sweeps.role") == "child"}
        assert len(kids) == 4

        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 700})
                page.set_default_timeout(TIMEOUT_MS)
                # The runs table of the "Model training" view (MLflow 3 opens GenAI by default).
                q = urllib.parse.urlencode({"workflowType": "machine_learning"})
                url = f"{server.uri}/#/experiments/{exp.experiment_id}/runs?{q}"
                page.goto(url, wait_until="load")
                page.get_by_text("matching runs").wait_for()
                assistant = page.get_by_role("button", name="Close")  # the assistant side panel
                if assistant.count():
                    assistant.first.click()
                # Show the symptom tag as a column, open the sweep's parent to list its children,
                # and size the name column to fit them.
                page.get_by_role("button", name="Columns").click()
                page.get_by_text("symptom", exact=True).first.click()
                page.keyboard.press("Escape")
                _row(page, parent.info.run_id, NAME_COL).locator("button").first.click()
                page.locator(f".ag-header-cell{NAME_COL} .ag-header-cell-resize").first.dblclick()

                expect = sync_api.expect
                expect(page.get_by_text("smoke", exact=True).first).to_be_visible()
                for run_id, (name, symptom) in kids.items():
                    link = _row(page, run_id, NAME_COL).get_by_role("link")
                    expect(link).to_have_text(name)
                    expect(link).to_be_visible()
                    expect(_row(page, run_id, SYMPTOM_COL)).to_have_text(symptom)
                    expect(_row(page, run_id, SYMPTOM_COL)).to_be_visible()
                shot = page.screenshot(path=str(tmp_path / "ui_screenshot.png"))
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                SCREENSHOT.write_bytes(shot)

                # The search box filters on the tag: only the runs with that symptom remain.
                wanted = kids[next(iter(kids))][1]
                search = page.get_by_placeholder("metrics.rmse")
                search.fill(f"tags.symptom = '{wanted}'")
                search.press("Enter")
                for run_id, (name, symptom) in kids.items():
                    if symptom == wanted:
                        expect(_row(page, run_id, SYMPTOM_COL)).to_have_text(wanted)
                    else:
                        expect(page.locator(f"[role=row][row-id='{run_id}']")).to_have_count(0)
                page.screenshot(path=str(tmp_path / f"ui_{wanted}.png"))
            finally:
                browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
