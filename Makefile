# Two commands for a fresh machine: `make run` and `make test`. Both build the virtual
# environment and install what they need; nothing else has to be set up by hand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint bench soak crossval fuzz messages key clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Interlude needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "Creating the virtual environment failed; on Debian: apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

## run: the bot with INTERLUDE_TELEGRAM_TOKEN set in .env; without it, the local demo
run: $(STAMP)
	$(BIN)/interlude migrate
	$(BIN)/interlude start

## test: the whole test suite (unit, integration, end to end, the dashboard in a real browser),
## every database test on SQLite and on PostgreSQL (a throwaway server the tests start themselves)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/interlude prompts check
	@sh scripts/ensure-chromium
	scripts/ensure-postgres
	$(BIN)/pytest

## bench: benchmarks that print their figures (not part of make test; several minutes)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_screening
	scripts/ensure-postgres
	$(BIN)/python -m benchmarks.bench_dispatch
	$(BIN)/python -m benchmarks.bench_planning
	$(BIN)/python -m benchmarks.bench_pipeline
	$(BIN)/python -m benchmarks.bench_ingest

## soak: long reliability scenarios (kill -9 mid-dispatch and mid-ingestion, several processes
## on PostgreSQL, a failing Telegram, PostgreSQL restarted, six hours asleep); 15-25 minutes
soak: $(STAMP)
	scripts/ensure-postgres
	INTERLUDE_SOAK=1 $(BIN)/pytest -p no:cacheprovider -s -v tests/soak

## crossval: crisis screening measured between the example sets (never the final set)
crossval: $(STAMP)
	$(BIN)/python -m benchmarks.crossval_screening --sweep

## fuzz: the hostile-update property with many generated updates (a few minutes; not in make test)
FUZZ_EXAMPLES ?= 10000
fuzz: $(STAMP)
	INTERLUDE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider tests/e2e/test_hostile_updates.py

## key: a new encryption key for INTERLUDE_ENCRYPTION_KEYS in .env
key: $(STAMP)
	@$(BIN)/interlude keys generate

lint: $(STAMP)
	$(BIN)/ruff check .

## messages: collect every client-facing sentence into bot/locale/interlude.pot for translators
messages: $(STAMP)
	mkdir -p bot/locale
	$(BIN)/pybabel extract --no-location -k N_ -o bot/locale/interlude.pot bot/messages.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
