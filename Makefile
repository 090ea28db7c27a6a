# Two entry points, both usable on a fresh clone:
#   make sweep   set up .venv and run the diagnostic sweep into outputs/
#   make test    set up .venv and run the whole test suite (fast, then slow end-to-end)
# Bring your own torch build (CUDA, ROCm, ...) with TORCH=..., e.g. make sweep TORCH=torch==2.14.1,
# or install it into .venv first: a torch already importable there is kept.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup sweep test test-fast test-slow bench clean

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

clean:
	rm -rf outputs multirun
