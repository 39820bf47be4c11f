# camio: `make run` starts a simulated device, `make test` runs every check, `make bench` measures.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DATA   ?= camio-data
LISTEN ?= 127.0.0.1:8080

.PHONY: run test lint typecheck pytest bench bench-deps clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(TEST_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: $(STAMP)
	$(VENV)/bin/camio run --data $(DATA) --listen $(LISTEN)

# Debian packages the tests need (real servers, a real browser); skipped when not root/apt.
system-deps:
	@bash .ci/system-deps

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(TEST_STAMP)
	$(VENV)/bin/mypy --strict src/

pytest: $(TEST_STAMP)
	$(VENV)/bin/pytest -q

test: system-deps lint typecheck pytest

# Debian packages the benchmarks use (wrk, mosquitto); skipped when not root/apt.
bench-deps:
	@bash .ci/system-deps wrk mosquitto

bench: bench-deps $(TEST_STAMP)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
