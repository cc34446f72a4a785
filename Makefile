# fedhex-hpc: `make demo` runs a small study end to end, `make test` runs the test suite.
# Both create the virtualenv .venv and install the package with its pinned stack.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo

# Debian packages for real MPI, a real Slurm cluster and a real container engine (the CPU
# image is built and run with podman) in the tests, and what
# Horovod's build needs. Installed when running as root on Debian/Ubuntu.
DEBIAN_PACKAGES := openmpi-bin libopenmpi-dev libpmix-dev cmake g++ \
	libhighwayhash-dev libfarmhash-dev slurm-wlm munge podman runc debootstrap
SYSTEM_STAMP  := $(VENV)/.system-packages
HOROVOD_STAMP := $(VENV)/.horovod
# The Horovod requirement comes from the `hpc` extra in pyproject.toml.
HOROVOD_REQ := $(shell sed -n 's/^hpc = \["\(horovod[^"]*\)".*/\1/p' pyproject.toml)
# mpi4py (the same extra): the PyPI wheel loads the system Open MPI at run time.
MPI4PY_REQ := $(shell sed -n 's/^hpc = \[.*"\(mpi4py[^"]*\)".*/\1/p' pyproject.toml)
HOROVOD_ENV := HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_MPI=1 HOROVOD_WITHOUT_GLOO=1 \
	HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1

.PHONY: setup setup-hpc demo test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(SYSTEM_STAMP):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			$(DEBIAN_PACKAGES); \
	else \
		echo "not root on Debian: install these packages yourself: $(DEBIAN_PACKAGES)"; \
	fi
	mkdir -p $(VENV) && touch $(SYSTEM_STAMP)

# Horovod compiles against the installed TensorFlow and the system MPI (about two
# minutes on two cores); pip caches the built wheel for the next venv, and the wheel is
# kept in the containers' cache, where the CPU image (Debian 12 too) installs it.
HOROVOD_WHEELS := $(or $(FEDHEX_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/fedhex-containers)/wheels-cpu
$(HOROVOD_STAMP): $(STAMP) $(SYSTEM_STAMP)
	$(HOROVOD_ENV) $(BIN)/pip wheel --quiet --no-deps --no-build-isolation -w $(HOROVOD_WHEELS) "$(HOROVOD_REQ)"
	$(BIN)/pip install --quiet --no-index --find-links $(HOROVOD_WHEELS) "$(HOROVOD_REQ)"
	$(BIN)/pip install --quiet "$(MPI4PY_REQ)"
	touch $(HOROVOD_STAMP)

setup: $(STAMP)

setup-hpc: $(HOROVOD_STAMP)

demo: $(STAMP)
	rm -rf $(DEMO)
	$(BIN)/fedhex train demo/dim2_small --run-dir $(DEMO)/dim2/three_in_row
	PATH="$(CURDIR)/$(BIN):$$PATH" FEDHEX_WORK=$(DEMO)/lhco FEDHEX_SMALL=1 \
		FEDHEX_SYNTHETIC_EVENTS=120000 FEDHEX_N_SIGNAL=600 FEDHEX_CLASSIFIERS=trees \
		bash jobs/train_lhco.sh
	@echo
	@echo "demo finished. Run directories (config, history, checkpoints, model, metrics.json, plots/):"
	@echo "  $(DEMO)/dim2/three_in_row    2D density study (KL to the exact target in metrics.json)"
	@echo "  $(DEMO)/lhco/study           CATHODE on SYNTHETIC LHCO-layout inputs: summary.md (SIC table), plots/, shared/ (flow)"

lint: $(STAMP)
	$(BIN)/ruff check fedhex_hpc tests benchmarks
	$(BIN)/ruff format --check fedhex_hpc tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix fedhex_hpc tests benchmarks
	$(BIN)/ruff format fedhex_hpc tests benchmarks

test: lint $(HOROVOD_STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=30

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache
