# Two commands do everything: `make run` serves the monitor, `make test` runs the tests.
# Both create .venv/ and install the project into it first (once; again when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
CONFIG ?= monitors.yaml

.PHONY: setup run test bench bench-quick clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/alerting serve --config $(CONFIG)

test: setup          # lint and type-check first (seconds), then the tests; configuration in pyproject.toml
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(VENV)/bin/python -m pytest -q

bench: setup          # every figure of the Performance section in one run (~35 min on 2 cores)
	$(VENV)/bin/python bench/check_speed.py
	$(VENV)/bin/python bench/cycle.py
	$(VENV)/bin/python bench/status_speed.py
	$(VENV)/bin/python bench/check_types.py
	$(VENV)/bin/python bench/steady.py --monitors 1000 --in-process
	$(VENV)/bin/python bench/steady.py --monitors 5000 --in-process
	$(VENV)/bin/python bench/steady.py --monitors 5000

bench-quick: setup    # a few minutes: command wall times, one cycle at 100/1,000/5,000, status speed
	$(VENV)/bin/python bench/check_speed.py
	$(VENV)/bin/python bench/cycle.py
	$(VENV)/bin/python bench/status_speed.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
