# Two entry points: `make plan` (install, then plan the bundled example) and `make test` (install, then test).
# `make docs` builds the documentation site into site/ (mkdocs.yml), strict: a broken link or a warning fails it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
EXAMPLE := instances/examples/llama70b-bloom176b-a100-h100.yaml
# NO_MKDOCS_2_WARNING: the theme's notice about its end of life, printed on every build, is not a build warning
DOCS_BUILD := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

.PHONY: plan test test-slow test-aic lint install docs

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
	$(DOCS_BUILD)
	$(BIN)/pytest

docs: install
	$(DOCS_BUILD)

# the long statistical runs and exhaustive checks marked slow (out of the default selection)
test-slow: install
	$(BIN)/pytest -m slow

# the tests marked aiconfigurator (out of the default selection: the extra is about 400 MB), in a throw-away
# environment of their own so that .venv stays as `install` builds it
test-aic:
	d=$$(mktemp -d) && $(PYTHON) -m venv $$d/venv && $$d/venv/bin/pip install --quiet --upgrade pip \
	  && $$d/venv/bin/pip install --quiet -e '.[dev,aiconfigurator]' \
	  && $$d/venv/bin/pytest -m aiconfigurator -p no:cacheprovider; status=$$?; rm -rf $$d; exit $$status
