# Two commands do everything: `make run` serves the monitor, `make test` runs the tests.
# Both create .venv/ and install the project into it first (once; again when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
CONFIG ?= monitors.yaml

.PHONY: setup run test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/alerting serve --config $(CONFIG)

test: setup
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(VENV)/bin/python -m pytest -q

bench: setup
	$(VENV)/bin/python bench/check_speed.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
