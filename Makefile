# Two commands do everything: `make run` serves the monitor, `make test` runs the tests.
# Both create .venv/ and install the project into it first (once; again when pyproject.toml changes).
PYTHON ?= python3
# a machine may set PYTHONDONTWRITEBYTECODE (this one does): then every process would compile this
# project's modules again, and the tests start ~400 `alerting` processes (~0.1 s of CPU each)
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv
STAMP := $(VENV)/.installed
CONFIG ?= monitors.yaml

PREFECT_OLDEST := 3.9.0
OLDEST := .venv-prefect-$(PREFECT_OLDEST)
# the quick form: the default serve mode end to end (flow engine in this process, hooks, schedule, blocks)
PREFECT_MATRIX_TESTS := tests/test_prefect_versions.py

.PHONY: setup run test test-suite test-prefect-oldest bench bench-quick clean

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
	$(MAKE) --no-print-directory -j2 --output-sync=line test-suite test-prefect-oldest

# three workers on two cores: most tests wait on served cycles; which tests share a worker, and in
# what order they start, is in tests/conftest.py (pytest_collection_modifyitems)
test-suite: setup
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(VENV)/bin/python -m pytest -q -n 3 --dist loadgroup --no-loadscope-reorder

# the newest Prefect that pyproject allows is what .venv gets; this runs the Prefect-facing tests
# again on the oldest one (its own venv, made once), beside the main suite
test-prefect-oldest: $(OLDEST)/.installed
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(OLDEST)/bin/python -m pytest -q -p no:cacheprovider $(PREFECT_MATRIX_TESTS)

$(OLDEST)/.installed: pyproject.toml
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install --quiet --upgrade pip
	$(OLDEST)/bin/pip install --quiet -e '.[test]' 'prefect==$(PREFECT_OLDEST)'
	$(OLDEST)/bin/python -c "import prefect; assert prefect.__version__ == '$(PREFECT_OLDEST)', prefect.__version__"
	touch $@

bench: setup          # every figure of the Performance section in one run (~60 min on 2 cores)
	$(VENV)/bin/python bench/check_speed.py
	$(VENV)/bin/python bench/cycle.py
	$(VENV)/bin/python bench/status_speed.py
	$(VENV)/bin/python bench/check_types.py
	$(VENV)/bin/python bench/status_page.py
	$(VENV)/bin/python bench/steady.py --monitors 1000,5000,10000
	$(VENV)/bin/python bench/steady.py --monitors 1000 --runner prefect
	$(VENV)/bin/python bench/distributed.py --monitors 1000
	$(VENV)/bin/python bench/distributed.py --monitors 5000
	$(VENV)/bin/python bench/alert_latency.py --monitors 1000
	$(VENV)/bin/python bench/alert_latency.py --monitors 5000

bench-quick: setup    # a few minutes: command wall times, one cycle at 100/1,000/5,000, status speed, status page
	$(VENV)/bin/python bench/check_speed.py
	$(VENV)/bin/python bench/cycle.py
	$(VENV)/bin/python bench/status_speed.py
	$(VENV)/bin/python bench/status_page.py

clean:
	rm -rf $(VENV) $(OLDEST) *.egg-info .pytest_cache
