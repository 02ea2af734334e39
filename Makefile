# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
export PYTHONPATH := $(CURDIR)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup debs demo demo-data serve test fuzz lint bench stop-db clean-data

setup: $(STAMP) debs

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	# torch==2.13.0 resolves to the CPU wheel on this machine's disk (see README).
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

debs:
	@bash scripts/install_debs.sh

# Everything a reviewer needs to try the app: database, ontology, synthetic demo clips,
# the tiny (random-weight) models run over them, demo accounts; then web server + worker.
demo: setup demo-data serve

demo-data:
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_ontology
	$(PY) manage.py make_demo_clips
	$(PY) manage.py make_tiny_models
	$(PY) manage.py run_pipeline --dataset demo --profile tiny --wait
	$(PY) manage.py make_demo_users

serve:
	@bash scripts/serve.sh $(HOST) $(PORT)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The fuzz stage alone (also part of `make test`): schemathesis and Hypothesis, bounded.
fuzz: setup
	$(PY) -m pytest -m fuzz $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) bench/run_all.py $(if $(QUICK),--quick,)

# The embedded PostgreSQL keeps running after the process that started it; stop it here.
stop-db:
	@$(PY) -c "from pathlib import Path; from relabel_app.embedded_db import stop_embedded; \
	import os; d = Path(os.environ.get('RELABEL_DATA_DIR', 'data')) / 'pgdata'; \
	print('stopped embedded PostgreSQL' if stop_embedded(d) else 'no embedded PostgreSQL running')"

clean-data: stop-db
	rm -rf data
