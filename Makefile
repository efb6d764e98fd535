# Two entry points: `make plan` (install, then plan the bundled example) and `make test` (install, then test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
EXAMPLE := instances/examples/llama70b-bloom176b-a100-h100.yaml

.PHONY: plan test test-slow lint install

$(BIN)/pdopt: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/pdopt

install: $(BIN)/pdopt

plan: install
	$(BIN)/pdopt plan $(EXAMPLE)

test: install
	$(BIN)/ruff check pdopt tests
	$(BIN)/mypy pdopt
	$(BIN)/pytest

# the long statistical runs and exhaustive checks marked slow (out of the default selection)
test-slow: install
	$(BIN)/pytest -m slow
