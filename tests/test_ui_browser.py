"""Slow end-to-end: what a person sees. A smoke sweep, then the MLflow UI over its store opened in
headless Chromium, twice: as a first-time user who opens the experiment from the experiments
list, and by the URL the sweep's summary printed. The runs table lists every run with its
``symptom``, the chart view draws the parent run's metrics, a run's page tells its diagnosis.

Screenshots go to $SWEEPS_UI_SCREENSHOTS when set (``make docs`` points it at docs/), else to
pytest's tmp_path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import run_cli
from sweeps.plots.background import wait_for_plots
from servers import mlflow_server

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that phones home or updates itself (the machine may have no network).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1600, "height": 800}

# MLflow 3 runs table (ag-grid): one row per run id, one column per attribute/param/tag.
NAME_COL = "[col-id='attributes.`Run Name`']"
SYMPTOM_COL = "[col-id='tags.`symptom`']"
# What the summary prints for a local store: the command, then the runs in the Model training view.
PRINTED = re.compile(r"^  browse: mlflow ui --backend-store-uri (\S+)\n"
                     r"  then open: http://127\.0\.0\.1:5000"
                     r"(/#/experiments/(\d+)/runs\?workflowType=machine_learning)$", re.M)


def _row(page, run_id: str, col: str):
    return page.locator(f"[role=row][row-id='{run_id}'] [role=gridcell]{col}")


def _dismiss_popups(page) -> None:
    """Close what MLflow opens over a first visit: a "Detect Issues" tip, the assistant panel."""
    for name in ("Got it", "Close"):
        button = page.get_by_role("button", name=name, exact=True)
        if button.count() and button.first.is_visible():
            button.first.click()


def test_printed_url_lands_on_the_runs_and_their_symptoms(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found; `apt-get install chromium` (as .ci/run does)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is in the test extras: pip install -e '.[test]'")
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT_MS)
    shots = Path(os.environ.get("SWEEPS_UI_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    proc = run_cli(["sweep=smoke", f"paths.output_dir={out}"], tmp_path)
    wait_for_plots(out / "smoke" / "analysis")  # finished in the background after the command
    printed = PRINTED.search(proc.stdout)
    assert printed, proc.stdout
    backend, route, exp_id = printed.groups()

    # `mlflow ui` listens on 127.0.0.1:5000 by default; the test's server on a free port.
    with mlflow_server(backend, tmp_path / "server-artifacts", tmp_path / "server.log") as server:
        c = MlflowClient(server.uri)
        exp = c.get_experiment(exp_id)
        assert exp.name == "smoke"
        runs = c.search_runs([exp_id])
        parent = next(r for r in runs if r.data.tags.get("sweeps.role") == "parent")
        kids = {r.info.run_id: (r.info.run_name, r.data.tags["symptom"])
                for r in runs if r.data.tags.get("sweeps.role") == "child"}
        assert len(kids) == 4

        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                # 1. A first-time user clicks the experiment: MLflow 3.17 opens its GenAI overview
                # (traces, tokens). The experiment's description on top of it says these are
                # training runs and links to them.
                first = browser.new_context(viewport=VIEWPORT).new_page()
                first.set_default_timeout(TIMEOUT_MS)
                first.goto(f"{server.uri}/#/experiments/{exp_id}", wait_until="load")
                link = first.locator(f"a[href='#{route[2:]}']")
                expect(link).to_have_text("the runs table")
                expect(first.get_by_text("Training runs of", exact=False).first).to_be_visible()
                first.wait_for_timeout(2000)  # let the first-visit tips appear, then close them
                _dismiss_popups(first)
                expect(first.get_by_role("heading", name="Overview")).to_be_visible()
                assert "workflowType=genai" in first.url
                first.screenshot(path=str(shots / "ui_first_visit.png"))
                with first.context.expect_page() as opened:  # the description's links open a tab
                    link.click()
                landed = opened.value
                landed.set_default_timeout(TIMEOUT_MS)
                expect(landed.get_by_text("matching runs")).to_be_visible()
                expect(_row(landed, parent.info.run_id, NAME_COL)).to_be_visible()
                assert "workflowType=machine_learning" in landed.url
                first.context.close()

                # 2. The printed URL, in a fresh browser: the runs table.
                page = browser.new_context(viewport=VIEWPORT).new_page()
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(server.uri + route, wait_until="load")
                expect(page.get_by_text("matching runs")).to_be_visible()
                _dismiss_popups(page)
                # Show the symptom tag as a column, open the sweep's parent to list its children,
                # and size the name column to fit them.
                page.get_by_role("button", name="Columns").click()
                page.locator("span:text-is('symptom')").first.click()  # (the description has it too)
                page.keyboard.press("Escape")
                _row(page, parent.info.run_id, NAME_COL).locator("button").first.click()
                page.locator(f".ag-header-cell{NAME_COL} .ag-header-cell-resize").first.dblclick()
                for run_id, (name, symptom) in kids.items():
                    link = _row(page, run_id, NAME_COL).get_by_role("link")
                    expect(link).to_have_text(name)
                    expect(link).to_be_visible()
                    expect(_row(page, run_id, SYMPTOM_COL)).to_have_text(symptom)
                    expect(_row(page, run_id, SYMPTOM_COL)).to_be_visible()
                page.screenshot(path=str(shots / "ui_runs.png"))

                # 3. The chart view draws the parent run's runs-per-symptom metrics.
                page.locator("label:has(input[name=runs-view-mode][value=CHART])").click()
                chart = page.get_by_text("runs/diverged", exact=True).first
                expect(chart).to_be_visible()
                page.screenshot(path=str(shots / "ui_charts.png"))
                # ... and the plots logged on it as images (the chart search finds them)
                charts = page.get_by_placeholder("Search metric charts")
                charts.fill("symptom_map")
                expect(page.get_by_text("symptom_map_linear", exact=True).first).to_be_visible()
                expect(page.locator("img[src*='symptom_map_linear']").first).to_be_visible()
                charts.fill("")
                page.locator("label:has(input[name=runs-view-mode][value=TABLE])").click()

                # 4. A diverged run's page: its description tells the diagnosis and the fix.
                diverged = next(rid for rid, (_, s) in kids.items() if s == "diverged")
                note = c.get_run(diverged).data.tags["mlflow.note.content"]
                _row(page, diverged, NAME_COL).get_by_role("link").click()
                expect(page.get_by_text(kids[diverged][0], exact=True).first).to_be_visible()
                expect(page.get_by_text("diverged", exact=False).first).to_be_visible()
                first_words = re.sub(r"[*`_#]", "", note.strip().splitlines()[0])[:40]
                expect(page.get_by_text(first_words, exact=False).first).to_be_visible()
                page.screenshot(path=str(shots / "ui_run.png"))
                page.go_back()

                # 5. The search box filters on the tag: only the runs with that symptom remain.
                expect(page.get_by_text("matching runs")).to_be_visible()
                search = page.get_by_placeholder("metrics.rmse")
                search.fill("tags.symptom = 'diverged'")
                search.press("Enter")
                for run_id, (name, symptom) in kids.items():
                    if symptom == "diverged":
                        expect(_row(page, run_id, SYMPTOM_COL)).to_have_text("diverged")
                    else:
                        expect(page.locator(f"[role=row][row-id='{run_id}']")).to_have_count(0)
            finally:
                browser.close()
    for name in ("ui_first_visit.png", "ui_runs.png", "ui_charts.png", "ui_run.png"):
        assert (shots / name).stat().st_size > 10_000, name
