# Quick start: `make run` (server on the embedded default) and `make test`.
# Both create and use a local virtual environment in .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= $(CURDIR)/.syncd-server
HOST ?= 127.0.0.1
PORT ?= 8484

.PHONY: run test lint bench bench-peers stack load clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/syncd server --data $(DATA) --host $(HOST) --port $(PORT)

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(BIN)/.installed
	$(BIN)/python -m bench.chunking

# The scaled stack on this machine: haproxy, 2 server processes, 2 PostgreSQL shards,
# NATS, moto (S3). Ctrl-C stops it all. `make stack STACK_ARGS="--servers 3"`.
stack: $(BIN)/.installed
	$(BIN)/python -m deploy.stack $(STACK_ARGS)

# Load figures (bench/load.py) for docs/SCALING.md; writes bench/results/load.json.
load: $(BIN)/.installed
	$(BIN)/python -m bench.load $(LOAD_ARGS)

# syncd against Syncthing and rsync (minutes; writes bench/results/peers.{json,md})
bench-peers: $(BIN)/.installed
	$(BIN)/python -m bench.peers --charts docs/perf

clean:
	rm -rf $(VENV) .pytest_cache
