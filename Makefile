# dtncloud developer entry points. `make test` is what CI runs (.ci/run).

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Touched after a successful install; the install re-runs when pyproject.toml is newer.
STAMP  := $(VENV)/.dtncloud-installed

# The whole suite on every core; -ra (from pyproject.toml) lists skips and failures at the end.
PYTEST := $(BIN)/python -m pytest -n auto

.PHONY: venv demo test tools bench lint format clean distclean

venv: $(STAMP)

$(BIN)/python:
	@# Debian's python3 needs the python3-venv package for ensurepip; add it when missing.
	$(PYTHON) -m venv $(VENV) || { \
	    rm -rf $(VENV); \
	    echo "make: '$(PYTHON) -m venv' failed; installing Debian's python3-venv"; \
	    if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	    $$SUDO apt-get update -qq && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && \
	    $(PYTHON) -m venv $(VENV); \
	}
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

demo: venv
	$(BIN)/dtncloud demo

tools:
	@bash scripts/ensure-tools

test: venv tools
	$(BIN)/ruff check .
	$(BIN)/mypy dtncloud
	$(PYTEST)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy dtncloud

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Each benchmark prints ratios against a baseline measured in the same run.
bench: venv
	@set -e; ran=0; \
	for script in benchmarks/*.py; do \
	    [ -e "$$script" ] || continue; \
	    echo "== $$script"; \
	    case "$$script" in \
	    */compare_one.py) \
	        if [ -z "$(ONE_CLASSES)" ]; then \
	            echo "skipped: it needs a build of the ONE simulator (make bench ONE_CLASSES=DIR)"; \
	            continue; \
	        fi; \
	        $(BIN)/python "$$script" --one-classes "$(ONE_CLASSES)";; \
	    *) $(BIN)/python "$$script";; \
	    esac; \
	    ran=1; \
	done; \
	[ "$$ran" -eq 1 ] || echo "no benchmarks yet (benchmarks/*.py)"

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis demo-out
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +

# clean, and the virtual environment too.
distclean: clean
	rm -rf $(VENV)
