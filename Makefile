# paylinks: `make demo` runs the whole job on the embedded defaults, `make test` runs the tests.
# Both create .venv and install the project (with its test extras) on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo test test-fast ui emulator benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/paylinks demo

test: $(STAMP)
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -n 2 -m "not slow and not postgres" $(PYTEST_ARGS)

ui: $(STAMP)
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

emulator: $(STAMP)
	$(BIN)/paylinks stripe-emulator --port 12111

benchmark: $(STAMP)
	$(BIN)/python benchmarks/mint_throughput.py

clean:
	rm -rf var .pytest_cache
