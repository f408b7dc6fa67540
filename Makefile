# callfleet: the two commands are `make demo` and `make test`; everything else supports them.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_DIR := .run
SERVICES_ENV := $(RUN_DIR)/services.env
CODE := dispatcher media_worker simulator shared
# Load DATABASE_URL / REDIS_URL chosen (or started) by `make services`.
WITH_SERVICES := set -a && . ./$(SERVICES_ENV) && set +a &&

.PHONY: install services lint typecheck test chaos demo stop bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,embedded]'
	touch $@

install: $(VENV)/.installed

# Uses DATABASE_URL/REDIS_URL when set, else local servers on the standard ports,
# else starts embedded PostgreSQL and Redis under .run/ (reused across runs).
services: install
	$(BIN)/python -m shared.embedded up --run-dir $(RUN_DIR) --env-file $(SERVICES_ENV)

lint: install
	$(BIN)/ruff check $(CODE) tests bench

typecheck: install
	$(BIN)/mypy

test: lint typecheck services
	$(WITH_SERVICES) $(BIN)/python -m pytest $(PYTEST_ARGS)

# Kills and restarts real fleet processes (own redis-server, database callfleet_chaos);
# not part of `make test` (pyproject deselects `-m chaos` by default).
chaos: services
	$(WITH_SERVICES) $(BIN)/python -m pytest tests/chaos -m chaos $(PYTEST_ARGS)

demo: services
	$(WITH_SERVICES) $(BIN)/python -m dispatcher.demo $(ARGS)

# Every benchmark, then one table of headline figures beside their same-run baselines.
bench: services
	$(WITH_SERVICES) $(BIN)/python bench/report.py $(ARGS)

stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m shared.embedded down --run-dir $(RUN_DIR); fi

clean: stop
	rm -rf $(VENV) $(RUN_DIR) .mypy_cache .pytest_cache .ruff_cache
