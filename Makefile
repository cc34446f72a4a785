# fedhex-hpc: `make demo` runs a small study end to end, `make test` runs the test suite.
# Both create the virtualenv .venv and install the package with its pinned stack.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo

.PHONY: setup demo test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO)
	$(BIN)/fedhex train configs/demo/dim2_small.yaml --run-dir $(DEMO)/dim2/three_in_row
	PATH="$(CURDIR)/$(BIN):$$PATH" FEDHEX_WORK=$(DEMO)/lhco FEDHEX_EPOCHS=8 \
		bash jobs/train_lhco.sh
	@echo
	@echo "demo finished. Run directories (config, history, checkpoints, model, metrics.json, plots/):"
	@echo "  $(DEMO)/dim2/three_in_row    2D density study (KL to the exact target in metrics.json)"
	@echo "  $(DEMO)/lhco/run             LHCO-layout sideband flow (synthetic input), samples_signal_region.h5"

lint: $(STAMP)
	$(BIN)/ruff check fedhex_hpc tests benchmarks
	$(BIN)/ruff format --check fedhex_hpc tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix fedhex_hpc tests benchmarks
	$(BIN)/ruff format fedhex_hpc tests benchmarks

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache
