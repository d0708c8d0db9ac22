# Two commands on a fresh machine:
#   make campaign   set up .venv, then run the main job (a CSP campaign on the shipped models)
#   make test       set up .venv, then run the test suite
# and the documentation site: make docs (serve it locally), make docs-check (build it with --strict)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs
export CSP_DATA_MIRROR ?= $(abspath ../shared/data)
export CSP_HOME ?= $(abspath .csp_home)
export PREFECT_HOME ?= $(abspath .prefect_home)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup test test-fast campaign lint bench clean service-up service-down service-status docs docs-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,augment]'
	touch $(STAMP)

setup: $(STAMP)

# two test processes (pytest-xdist): much of the suite waits on subprocesses, servers and I/O. loadfile: a
# file's tests stay on one worker (its module-scoped fixtures are built once), and tests/conftest.py makes the
# files of the session's Prefect server one unit (one server). `make test XDIST=` runs serially.
XDIST ?= -n 2 --dist loadfile

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider $(XDIST)

# the fast subset (every package, under 3 minutes on 2 cores): tests marked slow are left out
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider $(XDIST) -m "not slow"

# the documentation site (mkdocs.yml, docs/): serve at http://127.0.0.1:8000, or build with every warning an error
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/mkdocs serve

docs-check: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

campaign: $(STAMP)
	$(BIN)/csp demo

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# the local Prefect service (server, work pool csp-process, deployments of prefect.yaml, one worker)
PORT ?= 4200
service-up: $(STAMP)
	$(BIN)/csp service up --port $(PORT)

service-down: $(STAMP)
	$(BIN)/csp service down --port $(PORT)

service-status: $(STAMP)
	$(BIN)/csp service status --port $(PORT)

clean:
	rm -rf .csp_home .prefect_home
