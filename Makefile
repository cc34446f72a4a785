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
	rm -rf $(DEMO)/dim2
	$(BIN)/fedhex train configs/demo/dim2_small.yaml --run-dir $(DEMO)/dim2/three_in_row
	$(BIN)/fedhex train configs/demo/dim2_small.yaml --run-dir $(DEMO)/dim2/four_connected \
		--set data.target=dim2/four_connected --set run.name=demo-four_connected
	$(BIN)/fedhex sample $(DEMO)/dim2/three_in_row -n 10000 -o $(DEMO)/dim2/three_in_row/samples.h5
	@echo
	@echo "demo finished: run directories (config, history, checkpoints, model, metrics.json, plots/)"
	@echo "  $(DEMO)/dim2/three_in_row   $(DEMO)/dim2/four_connected"
	@echo "  samples: $(DEMO)/dim2/three_in_row/samples.h5"

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
