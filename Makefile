# One command to run, one to test (README.md). Everything else is a helper of those two.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Re-install whenever a requirements file changes.
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean-local

$(STAMP): requirements/*.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/test.txt
	touch $(STAMP)

install: $(STAMP)

# Starts (or finds) Postgres, Redis and the Kafka-compatible broker, migrates, seeds the
# demo and runs every process of DESIGN.md under honcho. Ctrl-C stops all of it.
run: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/backing_services.py exec -- \
		bash scripts/run_local.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The whole suite against real Postgres, Redis and broker (embedded ones if none answer).
test: lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/backing_services.py exec -- \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

# Forget the embedded services' data (the demo is re-seeded on the next run).
clean-local:
	rm -rf .local
