# The two commands a new user needs: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A real Tryton ERP server for the tests, in its own virtualenv: its dependencies are not ours.
TRYTON_VENV := .venv-tryton
TRYTON_STAMP := $(TRYTON_VENV)/.installed
# A real BottleCRM (a CRM target) for the tests, in its own virtualenv: it needs Python >= 3.12.
BOTTLECRM_PYTHON ?= $(shell pyenv root 2>/dev/null)/versions/3.12.1/bin/python
BOTTLECRM_VENV := .venv-bottlecrm
BOTTLECRM_STAMP := $(BOTTLECRM_VENV)/.installed
# Headless Chromium for the run report's screenshot test (Debian's package puts it here).
CHROMIUM := /usr/bin/chromium

.PHONY: demo test bench venv clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

$(TRYTON_STAMP): tests/servers/tryton-requirements.lock
	test -x $(TRYTON_VENV)/bin/python || $(PYTHON) -m venv $(TRYTON_VENV)
	$(TRYTON_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/servers/tryton-requirements.lock
	touch $(TRYTON_STAMP)

$(BOTTLECRM_STAMP): tests/servers/bottlecrm-requirements.lock
	@test -x $(BOTTLECRM_PYTHON) || { echo "error: Python 3.12 not found at $(BOTTLECRM_PYTHON); run 'pyenv install 3.12.1' or 'make BOTTLECRM_PYTHON=/path/to/python3.12'"; exit 1; }
	test -x $(BOTTLECRM_VENV)/bin/python || $(BOTTLECRM_PYTHON) -m venv $(BOTTLECRM_VENV)
	$(BOTTLECRM_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/servers/bottlecrm-requirements.lock
	touch $(BOTTLECRM_STAMP)

$(CHROMIUM):
	@command -v chromium >/dev/null || command -v apt-get >/dev/null || { echo "error: chromium not found and apt-get not available; install Chromium so that 'chromium' is on PATH"; exit 1; }
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y --no-install-recommends chromium; }

demo: $(STAMP)
	$(BIN)/erp2crm demo

test: $(STAMP) $(TRYTON_STAMP) $(BOTTLECRM_STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest

# Every benchmark at its recorded size (~25 min on 2 cores); results in bench/results/, see bench/README.md.
bench: $(STAMP) $(TRYTON_STAMP)
	$(BIN)/python bench/enrich_bench.py
	$(BIN)/python bench/quality_bench.py
	$(BIN)/python bench/reconcile_bench.py --sizes 10000 100000 --runs 3
	$(BIN)/python bench/reconcile_bench.py --sizes 1000000 --runs 1 --incremental 10000 --base 1000000
	$(BIN)/python bench/extract_bench.py --api
	$(BIN)/python bench/push_bench.py
	$(BIN)/python bench/sync_bench.py --scale small --incremental

clean:
	rm -rf var $(VENV) $(TRYTON_VENV) $(BOTTLECRM_VENV)
