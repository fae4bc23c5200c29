# cast-gatekeeper developer entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TESTBED := tests/e2e/testbed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv lint fmt node testbed-build test test-fast test-e2e bench up down clean

help:
	@echo "make test   - lint, type-check, fast tier, chart tests and the e2e tier on the real testbed"
	@echo "make up     - build the testbed if needed, start it, install the chart, run operator + API"
	@echo "make down   - stop everything make up started"
	@echo "make bench  - benchmark the hot routes against a bare FastAPI echo endpoint"

$(VENV)/.installed: pyproject.toml
	@echo "[make] creating $(VENV) and installing cast-gatekeeper[test]"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	@touch $@

venv: $(VENV)/.installed

tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	@echo "[make] installing @dcl/crypto for signed-fetch tests"
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	@touch $@

node: tests/js/node_modules/.installed

lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy cast_core api/cast_api operator/cast_operator tests bench

fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

testbed-build:
	bash $(TESTBED)/build.sh

test-fast: venv node
	$(PY) -m pytest -m "not e2e" -q

test-e2e: venv node testbed-build
	$(PY) -m pytest -m e2e -q

# One pytest run for both tiers, so the closing summary counts everything.
test: venv node lint testbed-build
	CAST_TESTBED_BIN="$$(bash $(TESTBED)/build.sh --print-bin-dir)" $(PY) -m pytest -q

bench: venv
	$(PY) bench/bench_routes.py

up: venv testbed-build
	$(PY) -m tests.e2e.stack up

down: venv
	$(PY) -m tests.e2e.stack down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
