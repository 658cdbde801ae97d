# Two entry points for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5006
# make cluster: N processes behind nginx, on the machine's Redis and PostgreSQL (docs/deploy.md).
PROCESSES ?= 3
CLUSTER_PORT ?= 8080
REDIS_URL ?= redis://127.0.0.1:6379/0
CLUSTER_DB ?= postgresql://postgres@127.0.0.1:5432/dashboard_cluster
# The official pusher-js client, which the browser tests load into Chromium.
PUSHER_JS := node_modules/pusher-js/dist/web/pusher.min.js

.PHONY: serve test test-jupyter check bench cluster clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files so a second `make` does not reinstall; they go stale when pyproject.toml changes.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Order-only: a new pusher-js needs no pip install, but `make test` still brings it up to date.
$(VENV)/.dev: pyproject.toml | $(BIN)/python $(PUSHER_JS)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.runtime

# The runtime with the redis and postgres extras, for a cluster.
$(VENV)/.cluster: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[redis,postgres]'
	touch $@ $(VENV)/.runtime

# npm ci installs exactly package-lock.json; it keeps the tarball's old mtimes, hence the touch.
# Only the tests need node: `make serve` never gets here.
$(PUSHER_JS): package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

serve: $(VENV)/.runtime
	$(BIN)/dashboard serve --port $(PORT)

# Ctrl-C stops nginx and every process.
cluster: $(VENV)/.cluster
	$(BIN)/python scripts/cluster.py --processes $(PROCESSES) --port $(CLUSTER_PORT) \
		--redis $(REDIS_URL) --db $(CLUSTER_DB)

test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Only the notebooks in a real JupyterLab (tests/jupyter; part of `make test` too).
test-jupyter: $(VENV)/.dev
	$(BIN)/python -m pytest -m jupyter $(PYTEST_ARGS)

check: $(VENV)/.dev
	$(BIN)/ruff format --check dashboard tests benchmarks scripts
	$(BIN)/ruff check dashboard tests benchmarks scripts
	$(BIN)/mypy

bench: $(VENV)/.runtime
	$(BIN)/python benchmarks/fanout.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
