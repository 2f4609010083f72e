# ontwatch — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install run test e2e ci test-quick lint format bench screenshots clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## run the service with a demo inventory on http://127.0.0.1:5000
run: install
	$(BIN)/ontwatch run --demo

## the linter and the test suite, except the slow end-to-end and fault runs (about a minute)
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not e2e"

## end-to-end and fault tests: the real service process, fake Telegram, faults; prints figures
e2e: install
	$(BIN)/python -m pytest -q -m e2e -rA

## everything, as CI runs it
ci: test e2e

## unit tests only: no process, e2e or privileged network tests
test-quick: install
	$(BIN)/python -m pytest -q -m "not e2e and not privileged"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/push_bench.py
	$(BIN)/python bench/sweep_bench.py
	$(BIN)/python bench/map_bench.py

## regenerate docs/dashboard.png, docs/map.png and their -phone twins (headless Chromium, demo data)
screenshots: install
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
