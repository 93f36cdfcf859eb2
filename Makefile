# The README's promise: `make run` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test bench bench-tenants bench-history bench-booking check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# The whole product on one machine: SQLite, in-process cache and usage reconciliation.
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_catalog docs/catalog.example.yaml
	$(PY) manage.py setup_demo --base-url http://$(HOST):$(PORT)
	$(VENV)/bin/gunicorn console.wsgi --bind $(HOST):$(PORT) --worker-class gthread --workers 1 --threads 32

# The import contracts first (pyproject.toml [tool.importlinter]): a broken layering fails
# the target before any test runs.
test: install
	$(VENV)/bin/lint-imports
	SECRET_KEY=$${SECRET_KEY:-insecure-test-only-key-0123456789abcdefghijklmnopqrstuvwxyz} \
		$(PY) -m pytest -n $${PYTEST_WORKERS:-2} --dist loadgroup $(PYTEST_ARGS)

# The benchmarks' processes run with production settings, which refuse to start without a
# secret key: a throwaway one unless SECRET_KEY is set.
BENCH_SECRET = SECRET_KEY=$${SECRET_KEY:-insecure-bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz}

# Needs PostgreSQL and Redis (BENCH_DATABASE_URL / BENCH_REDIS_URL, default: local servers).
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

# 10,000 organizations and 200,000 keys against one of each (docs/performance.md, "Tenants,
# keys and Redis"); --write puts the table into the page.
bench-tenants: install
	$(PY) bench/tenants.py $(BENCH_ARGS)

# How cost grows with history (docs/performance.md, "How cost grows"): make a history of
# HISTORY_RECORDS usage records with COPY (minutes), then time every page on it. Both use
# HISTORY_DATABASE_URL, a database of their own that the generator migrates and fills.
HISTORY_RECORDS ?= 10000000
HISTORY_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mixgateway_history
bench-history: install
	DATABASE_URL=$(HISTORY_DATABASE_URL) $(BENCH_SECRET) $(PY) manage.py migrate --noinput
	DATABASE_URL=$(HISTORY_DATABASE_URL) $(BENCH_SECRET) $(PY) bench/history.py --records $(HISTORY_RECORDS)
	DATABASE_URL=$(HISTORY_DATABASE_URL) $(BENCH_SECRET) $(PY) bench/history_measure.py

# Usage events per second booked into PostgreSQL by 1 and 2 booking processes.
bench-booking: install
	$(BENCH_SECRET) DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mixgateway_booking} \
	REDIS_URL=$${BENCH_REDIS_URL:-redis://127.0.0.1:6379/3} sh -c \
	  '$(PY) manage.py migrate --noinput && $(PY) bench/booking.py $(BOOKING_ARGS)'

check: install
	$(PY) manage.py check

clean:
	rm -rf $(VENV) var
