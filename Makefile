# paylinks: `make demo` runs the whole job on the embedded defaults, `make test` runs the tests.
# Both create .venv and install the project (with its test extras) on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo lint test test-fast soak ui emulator office benchmark clean

# The install's own chatter goes to .venv/install.log, shown only if it fails.
$(STAMP): pyproject.toml
	@echo "installing paylinks and its dependencies into $(VENV) (first run only, a minute or two)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip > $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; exit 1; }
	@$(BIN)/python -m pip install --quiet -e '.[test]' >> $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@$(BIN)/paylinks demo

# The lint, format and type gate: the same rules for every package.
LINTED := paylinks flows tasks office cli stripe_emulator tests benchmarks sql
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

# Brings what the tests need: Chromium here (installed if missing), PostgreSQL inside pytest (a
# throwaway server when none answers), Stripe's fixtures vendored; each says where it came from.
# Three workers on two cores: the tests wait on servers and subprocesses often enough that a third
# keeps the cores busy (a fresh clone's tests: 11–13 min with 3, 15 with 2, on the same machine).
test: lint
	@$(BIN)/python tests/support/chromium.py
	$(BIN)/pytest -n 3 --dist loadgroup --durations=15 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -n 3 --dist loadgroup -m "not slow and not postgres" $(PYTEST_ARGS)

# The club that lives, at length: SOAK_STEPS random steps (new sequences each time) on SQLite,
# then its figures: steps, runs of each flow, payments, emails, time.
SOAK_STEPS ?= 5000
soak: $(STAMP)
	PAYLINKS_TEST_SOAK_STEPS=$(SOAK_STEPS) $(BIN)/pytest tests/test_club_lives.py -k sqlite -q $(PYTEST_ARGS)

ui: $(STAMP)
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

# The local Stripe emulator on its kept state (var/stripe-emulator.json: the demo's), on the port
# its links point at (12111 for a new one).
emulator: $(STAMP)
	$(BIN)/paylinks stripe-emulator

# The demo's club on this machine (after `make demo`): the office on http://127.0.0.1:8000 and the
# emulator on the demo's state, delivering signed webhooks to it; one Ctrl-C stops both. A club of
# your own (real Stripe, SMTP, PostgreSQL) is served by `paylinks serve` with its settings.
office: $(STAMP)
	@$(BIN)/paylinks office --port 8000

# Every figure paylinks is held to, measured in one run, printed as one table (about 25 minutes on
# 2 cores; PostgreSQL at 127.0.0.1:5432 for the balance query). Exit status 1 when a figure fails.
# BENCH_ARGS=--record appends the run and its machine to benchmarks/RESULTS.md; --quick checks the
# harness in under a minute; --only NAME (see --list) measures one figure.
BENCH_ARGS ?=
benchmark: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache
