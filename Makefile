# RobotOps Workbench — the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEV    := $(VENV)/.dev-stamp
STORE  ?= workbench-store
JOBS   ?= 2

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

## demo: create .venv, install, and run the guided tour on the bundled samples
demo: $(STAMP)
	$(BIN)/workbench demo --store $(STORE)

## test: create .venv, install with test extras, run the whole suite (JOBS=2 processes)
test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS)

## bench: run the benchmarks (figures side by side with the usual baseline)
bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

$(DEV): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	@touch $(DEV)

## lint: ruff over the code, tests and benchmarks; mypy over the package (strict for its core)
lint: $(DEV)
	$(BIN)/python -m ruff check workbench tests bench
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) $(STORE) $(STORE)-fleet reports .pytest_cache
