# Quick start: `make run` (everything on a laptop) and `make test` (the whole suite).
# Both need only Python 3.11+: the virtualenv, the package and its extras are set up on first use
# and installed again only when pyproject.toml changes.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
# Interpreters tried in order for the virtualenv; `make PYTHON=python3.12 test` picks one explicitly.
PYTHON ?= python3.13 python3.12 python3.11 python3
PYTEST_ARGS ?=
# Test processes: one per CPU, at most 4 (each session starts its own Redis, cluster and workers);
# `make test PYTEST_WORKERS=0` runs the suite in this one process.
PYTEST_WORKERS ?= auto --maxprocesses 4

PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install --disable-pip-version-check
# The versions installed: the set the suite last passed with (pyproject.toml keeps the supported ranges).
CONSTRAINTS := constraints.txt
DEV_STAMP := $(VENV)/.installed-dev
TEST_STAMP := $(VENV)/.installed-test

.PHONY: help run test lint bench constraints clean distclean

help:
	@echo "make run        create $(VENV) if missing, install, start 'tracker dev' (web, worker, beat, Redis, mail catcher)"
	@echo "make test       create $(VENV) if missing, install with test extras, run pytest on every CPU (PYTEST_ARGS='-k scores -x', PYTEST_WORKERS=0 for one process)"
	@echo "make lint       ruff and mypy"
	@echo "make bench      run the benchmarks in bench/ (BENCH_CUSTOMERS=20000 customers in the scale run)"
	@echo "make constraints  refresh $(CONSTRAINTS) from the newest releases pyproject.toml allows (then run make test)"
	@echo "make clean      remove caches and build output; 'make distclean' removes $(VENV) too"

run: $(DEV_STAMP)
	$(VENV)/bin/tracker dev

test: $(TEST_STAMP)
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy tracker webhooks workers

# The scale run at a size this 2-core machine fills in a few minutes, then the HTTP run (real processes),
# then the in-process micro-benchmarks. `make bench BENCH_CUSTOMERS=100000` for a larger scale run.
BENCH_CUSTOMERS ?= 20000
bench: $(TEST_STAMP)
	$(PY) bench/scale.py --customers $(BENCH_CUSTOMERS) --processes 2
	$(PY) bench/http_run.py
	$(PY) bench/run.py

# A venv whose creation failed half-way (Debian without python3-venv leaves one without pip)
# is removed, so the next run starts over instead of failing later in a confusing way.
$(PY):
	@found=""; \
	for candidate in $(PYTHON); do \
		if command -v "$$candidate" >/dev/null 2>&1 \
			&& "$$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
			found="$$candidate"; break; \
		fi; \
	done; \
	if [ -z "$$found" ]; then \
		echo "make: Python 3.11 or newer is needed to create $(VENV); tried: $(PYTHON)." >&2; \
		echo "make: install one (e.g. 'apt-get install python3 python3-venv') or run 'make PYTHON=/path/to/python3.11 $(MAKECMDGOALS)'." >&2; \
		exit 1; \
	fi; \
	echo "Creating $(VENV) with $$found ($$("$$found" -c 'import sys; print(sys.version.split()[0])'))"; \
	if ! "$$found" -m venv "$(VENV)" || ! "$(PY)" -m pip --version >/dev/null 2>&1; then \
		rm -rf "$(VENV)"; \
		echo "make: '$$found -m venv' failed; on Debian or Ubuntu install the python3-venv package." >&2; \
		exit 1; \
	fi

$(DEV_STAMP): pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP_INSTALL) -c $(CONSTRAINTS) -e '.[dev]'
	@touch $@

# The test extra includes the dev extra, so it satisfies `make run` as well.
$(TEST_STAMP): pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP_INSTALL) -c $(CONSTRAINTS) -e '.[test]'
	@touch $@ $(DEV_STAMP)

# A throwaway virtualenv gets the newest releases of everything the test extra needs; their versions become
# $(CONSTRAINTS). The working $(VENV) is installed again from it on the next make run or make test.
constraints: | $(PY)
	rm -rf $(VENV)-constraints
	$(PY) -m venv $(VENV)-constraints
	$(VENV)-constraints/bin/python -m pip install --disable-pip-version-check --quiet '.[test]'
	{ sed -n '/^#/p' $(CONSTRAINTS); $(VENV)-constraints/bin/python -m pip freeze --exclude satisfaction-tracker; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf $(VENV)-constraints

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache test-output
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
