# Two entry points, both usable on a fresh clone:
#   make sweep   set up .venv and run the diagnostic sweep into outputs/
#   make test    set up .venv and run the whole test suite (fast, then slow end-to-end)
#   make docs    regenerate the README's pictures in docs/ from the diagnostic sweep and the UI test
# Bring your own torch build (CUDA, ROCm, ...) with TORCH=..., e.g. make sweep TORCH=torch==2.14.1,
# or install it into .venv first: a torch already importable there is kept.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup sweep test test-fast docs bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

sweep: setup
	$(BIN)/sweeps sweep=diagnostic

test: setup
	$(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q -m slow

test-fast: setup
	$(BIN)/python -m pytest -q

# The README's pictures, regenerated from the current code by the diagnostic sweep.
docs: setup
	rm -rf outputs/docs
	$(BIN)/sweeps sweep=diagnostic paths.output_dir=outputs/docs sweep.wait_for_plots=true
	for f in symptom_map_linear.png symptom_map_poly.png loss_curves_linear.png loss_curves_poly.png \
	         overfitting.png; do cp outputs/docs/diagnostic/analysis/$$f docs/$$f; done
	$(BIN)/sweeps paths.output_dir=outputs/docs    # the worked example, for the fitted-line picture
	$(BIN)/sweeps-analyze --experiment adhoc --output-root outputs/docs --show 0
	cp outputs/docs/adhoc/analysis/fitted_line.png outputs/docs/adhoc/analysis/fitted_line.gif docs/
	# The MLflow UI screenshots: the browser test's (needs /usr/bin/chromium, as .ci/run installs).
	rm -rf outputs/docs/ui
	SWEEPS_UI_SCREENSHOTS=$(CURDIR)/outputs/docs/ui $(BIN)/python -m pytest -q -rs -m slow tests/test_ui_browser.py
	cp outputs/docs/ui/ui_runs.png outputs/docs/ui/ui_charts.png outputs/docs/ui/ui_run.png docs/

# Speed: whole sweeps side by side (see benchmarks/README.md).
bench: setup
	$(BIN)/python benchmarks/bench_sweeps.py
	$(BIN)/python benchmarks/bench_analyze.py

clean:
	rm -rf outputs multirun
