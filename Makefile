# focom-o2ims developer commands. `make test` is the project's test command (CI runs it).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test test-slow lint typecheck layers unit pytest bench demo clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

# Two pytest-xdist workers, a whole module per worker (module-scoped systems start once): most e2e time is
# waiting on processes, so two modules at a time nearly halve it on 2 cores. PYTEST_WORKERS=0 runs serially.
PYTEST_WORKERS ?= 2

pytest: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadscope

test: lint typecheck layers pytest

# The 30-cluster chaos runs (one and two replicas of every service); minutes, not part of `make test`.
test-slow: $(STAMP)
	O2_E2E_SLOW=1 $(BIN)/pytest -q -p no:cacheprovider tests/e2e/test_chaos.py

# Writes bench/results/results.md and PNG charts; the `bench` extra brings matplotlib and ansible-core.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench

# The whole flow on a fresh sandbox, shown live: start, submit allClusters, wait for Synced, stop.
demo: $(STAMP)
	$(BIN)/python -m o2ctl demo

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
