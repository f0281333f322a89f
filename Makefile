# The two set-up commands of the README: `make demo` and `make test`. Both work on a fresh machine
# with Python >= 3.10: they create .venv and install into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE := examples/example_project

.PHONY: demo test lint completions bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[demo]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/python scripts/demo.py

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check mfproj tests scripts bench
	$(BIN)/ruff format --check mfproj tests scripts bench
	$(BIN)/mypy

completions: $(VENV)/.installed
	$(BIN)/python scripts/gen_completions.py

bench: $(VENV)/.installed-test
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/sfn_lookup.py
	$(BIN)/python bench/deploy.py
	$(BIN)/python bench/runs.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/races.py
	$(BIN)/python bench/deployments.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
