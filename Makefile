# The two set-up commands of the README: `make demo` and `make test`. Both work on a fresh machine
# with Python >= 3.10: they create .venv and install into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE := examples/example_project

LOCALSTACK := .venv-localstack
# LocalStack 4.9.2 is the newest that runs on Python 3.11 (see ../shared/spec/environment-facts.md); the
# pins work around its dependencies' newer releases.
LOCALSTACK_PACKAGES := 'localstack-core[runtime]==4.9.2' 'cbor2<5.7' 'pyopenssl==24.2.1' 'cryptography==43.0.3'

.PHONY: demo test lint completions bench clean localstack

# uv installs the dependencies in seconds where pip takes over a minute (a fresh `make demo`: about a
# minute in all instead of ~110 s); pip does it where uv cannot be had. Bytecode is compiled at install,
# as pip does: where PYTHONDONTWRITEBYTECODE is set, nothing would compile it later (every process would
# compile botocore again; the suite took 30% longer).
INSTALL = if [ -x $(BIN)/uv ]; then $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python $(1); \
	else $(BIN)/python -m pip install --quiet $(1); fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet uv || echo "note: uv could not be installed; pip installs instead"

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(call INSTALL,-e ".[demo]")
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(call INSTALL,-e ".[test]")
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/python scripts/demo.py

# The second Step Functions emulator, in a virtual environment of its own. Where it cannot be installed the
# tests that need it are skipped with the reason (CI sets MFPROJ_REQUIRE_LOCALSTACK=1: there they fail).
$(LOCALSTACK)/.installed:
	( $(PYTHON) -m venv $(LOCALSTACK) && $(LOCALSTACK)/bin/python -m pip install --quiet $(LOCALSTACK_PACKAGES) \
		&& touch $@ ) || echo "note: LocalStack could not be installed; its tests will be skipped"

localstack: $(LOCALSTACK)/.installed

test: $(VENV)/.installed-test $(LOCALSTACK)/.installed
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
	$(BIN)/python bench/quotas.py

clean:
	rm -rf $(VENV) $(LOCALSTACK) .pytest_cache .mypy_cache .ruff_cache
