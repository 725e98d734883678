# Two commands on a fresh machine: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BQEMU := $(VENV)/bqemulator
HOST ?= 127.0.0.1
PORT ?= 8084

.PHONY: run test lint typecheck bench install install-test browser-deps console console-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files re-run the install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[data]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(BQEMU)/.installed | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[data,test,bench]'
	touch $@ $(VENV)/.installed

# The BigQuery stand-in runs from a virtualenv of its own (its duckdb and sqlglot pins clash
# with fakesnow's); DuckDB's spatial extension is installed from its wheel, so it starts offline.
$(BQEMU)/.installed: tests/support/bqemulator-requirements.txt | $(BIN)/python
	$(PYTHON) -m venv $(BQEMU)
	$(BQEMU)/bin/pip install --quiet -r tests/support/bqemulator-requirements.txt
	mkdir -p $(BQEMU)/home
	HOME=$(abspath $(BQEMU))/home $(BQEMU)/bin/python -c "import duckdb, pathlib, duckdb_extension_spatial as m; duckdb.connect().execute(\"INSTALL '\" + str(next(pathlib.Path(m.__file__).parent.glob('extensions/*/spatial.duckdb_extension'))) + \"'\")"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install console
	$(BIN)/eventrelay serve --host $(HOST) --port $(PORT)

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-test
	$(BIN)/mypy

test: lint typecheck browser-deps console console-test
	$(BIN)/pytest -n 2 --dist loadgroup -q

# The browser tests drive Debian's Chromium and load the SDKs from their npm packages. Without
# root/apt-get or npm they skip locally (and fail under CI=true).
BROWSER := tests/browser
browser-deps: $(BROWSER)/node_modules/.package-lock.json
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; } || echo "chromium is not installed and cannot be here (needs root and apt-get): the browser tests will skip"

$(BROWSER)/node_modules/.package-lock.json: $(BROWSER)/package.json $(BROWSER)/package-lock.json
	@if command -v npm >/dev/null; then cd $(BROWSER) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error; else echo "npm not found: the browser tests will skip"; fi

# The operator console (TypeScript + React, console/) is built into the package, which serves
# it at /; without npm it is not built and / says how to build it.
CONSOLE := console
CONSOLE_OUT := src/eventrelay/console/index.html
console: $(CONSOLE_OUT)

$(CONSOLE)/node_modules/.package-lock.json: $(CONSOLE)/package.json $(CONSOLE)/package-lock.json
	@if command -v npm >/dev/null; then cd $(CONSOLE) && npm ci --no-audit --no-fund --loglevel=error; else echo "npm not found: the console is not built (eventrelay serve says how to build it)"; fi

$(CONSOLE_OUT): $(CONSOLE)/node_modules/.package-lock.json $(CONSOLE)/index.html $(CONSOLE)/vite.config.ts $(CONSOLE)/tsconfig.json $(shell find $(CONSOLE)/src -type f 2>/dev/null)
	@if [ -d $(CONSOLE)/node_modules ]; then cd $(CONSOLE) && npm run --silent build >/dev/null && echo "console built into $(CONSOLE_OUT)"; fi

console-test: $(CONSOLE)/node_modules/.package-lock.json
	@if [ -d $(CONSOLE)/node_modules ]; then cd $(CONSOLE) && npm test --silent; fi

# wrk (C) generates the load when present; on Debian/Ubuntu as root it is installed here.
bench: install-test
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y -qq wrk >/dev/null; } || echo "wrk not found: using the Python load generator"
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .eventrelay .pytest_cache .mypy_cache .ruff_cache $(BROWSER)/node_modules $(CONSOLE)/node_modules src/eventrelay/console
