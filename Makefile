# One command to run, one to test (README.md). Everything else is a helper of those two.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Re-install whenever a requirements file changes.
STAMP := $(VENV)/.installed

# The seat map app (frontend/): its packages, and its build, which Django serves at /.
NPM_STAMP := frontend/node_modules/.installed
FRONTEND_SOURCES := $(shell find frontend/src frontend/public -type f 2>/dev/null) \
	frontend/index.html $(wildcard frontend/*.ts frontend/tsconfig*.json)
# Browser tests drive Debian's Chromium (Playwright's own download does not work here).
SEATS_CHROMIUM ?= $(shell command -v chromium || echo /usr/bin/chromium)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test lint install clean-local browser

$(STAMP): requirements/*.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/test.txt
	touch $(STAMP)

$(NPM_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

# Gzip (and Brotli, when installed) copies beside each built file: WhiteNoise serves them
# to browsers that accept them.
frontend/dist/index.html: $(STAMP) $(NPM_STAMP) $(FRONTEND_SOURCES)
	cd frontend && npm run build
	$(BIN)/python -m whitenoise.compress --quiet frontend/dist

# The one origin in front of the web processes (scripts/proxy.py): the machine's nginx
# if it has one, else Debian's package unpacked into the virtualenv (no root, no service).
$(BIN)/nginx: | $(STAMP)
	if command -v nginx >/dev/null; then ln -sf "$$(command -v nginx)" $@; else \
		rm -rf $(VENV)/nginx && mkdir -p $(VENV)/nginx && cd $(VENV)/nginx && \
		apt-get download -qq nginx && dpkg-deb -x nginx_*.deb root && rm nginx_*.deb && \
		ln -sf ../nginx/root/usr/sbin/nginx ../bin/nginx; fi
	$@ -v

install: $(STAMP) $(BIN)/nginx frontend/dist/index.html

browser:
	test -x $(SEATS_CHROMIUM) || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

# Starts (or finds) Postgres, Redis and the Kafka-compatible broker, migrates, seeds the
# demo and runs every process of README.md ("Processes") under honcho, each worker under
# scripts/respawn.py (restarted when it crashes). Ctrl-C stops all of it.
run: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/backing_services.py exec -- \
		bash scripts/run_local.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/ruff format --check .
	cd frontend && npm run typecheck

# The whole suite: the app's unit tests, then every Python test (browser ones included)
# against real Postgres, Redis and broker (embedded ones if none answer).
test: lint browser
	cd frontend && npm test
	PATH="$(CURDIR)/$(BIN):$$PATH" SEATS_CHROMIUM=$(SEATS_CHROMIUM) \
		$(BIN)/python scripts/backing_services.py exec -- $(BIN)/python -m pytest $(PYTEST_ARGS)

# Forget the embedded services' data (the demo is re-seeded on the next run).
clean-local:
	rm -rf .local
