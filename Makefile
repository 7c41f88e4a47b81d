# AlphaPulse: the one entry point. `make run` serves the API; `make test` proves it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
WORKERS ?= 2
export PGPORT ?= 54329

.PHONY: help venv setup run test lint format db-up db-down psql check migrate demo backup restore \
        bench bench-data rehearse drills redis-up redis-down services-down worker beat

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Production installs requirements.txt alone; this venv (make test, bench, run) takes the dev set too.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed ## create .venv and install requirements-dev.txt (runtime + tests, lint, bench)

db-up: ## start the local PostgreSQL in .pgdata/ (installs it if missing), roles, database, .env
	@scripts/db.sh up

db-down: ## stop the local PostgreSQL and Redis
	@scripts/db.sh down
	@scripts/redis.sh down

redis-up: db-up ## start the local Redis in .redis/ (installs it if missing), REDIS_URL in .env
	@scripts/redis.sh up

redis-down: ## stop the local Redis
	@scripts/redis.sh down

services-down: db-down ## stop every local service (PostgreSQL, Redis)

psql: ## psql into the database as the cluster superuser
	@scripts/db.sh psql

migrate: venv db-up ## apply migrations as the owner role
	$(PY) manage.py migrate

setup: venv db-up redis-up ## everything `make run` does, except serving
	$(PY) manage.py migrate
	$(PY) manage.py check --deploy --fail-level ERROR --database default >/dev/null
	$(PY) manage.py load_demo
	$(PY) manage.py collectstatic --noinput -v 0

run: setup ## set up, then serve the API on http://127.0.0.1:$(PORT) with a Celery worker and beat (foreground; Ctrl-C stops all)
	@mkdir -p .celery
	@# --env /dev/null: settings read .env themselves; honcho must not turn it into real variables.
	API_PORT=$(PORT) WORKERS=$(WORKERS) $(VENV)/bin/honcho start --env /dev/null -f Procfile

worker: setup ## only the Celery worker, in the foreground
	$(VENV)/bin/celery -A alphapulse worker --loglevel INFO

beat: setup ## only the Celery beat scheduler, in the foreground
	@mkdir -p .celery
	$(VENV)/bin/celery -A alphapulse beat --loglevel INFO --schedule .celery/beat-schedule

test: venv db-up redis-up ## lint, migration check and the whole test suite on a real PostgreSQL
	@scripts/test.sh

lint: venv ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv ## apply ruff format and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

backup: venv db-up ## pg_dump the database (RLS forced) to backups/ (DB=, FILE=), with row counts per table and tenant
	@scripts/backup.sh

restore: venv db-up ## restore FILE=backups/<x>.dump into a new database (DB=name) and check its row counts (UNCHECKED=1 without)
	@scripts/restore.sh

BENCH_DB ?= alphapulse_bench
REHEARSE_DB ?= alphapulse_rehearse

bench-data: venv db-up ## (re)build the bench database (BENCH_DB=alphapulse_bench): migrate, COPY 1M trades in 100 skewed tenants, ANALYZE
	PYTHONPATH=scripts $(PY) -m bench.data --db-name $(BENCH_DB)

bench: venv db-up ## RLS ON vs OFF vs the single-tenant floor, interleaved, on copies of the bench database -> docs/benchmarks/
	PYTHONPATH=scripts $(PY) -m bench.threeway --db $(BENCH_DB)

rehearse: venv db-up ## migrate a 1M-trade legacy database under old-app traffic -> docs/benchmarks/rehearsal.md
	PYTHONPATH=scripts $(PY) -m bench.rehearse --db $(REHEARSE_DB)

drills: venv db-up redis-up ## reliability drills: PgBouncer, database restart, rollback scenarios 1-2 under load (~2 min)
	$(VENV)/bin/pytest -m drill -s -p no:warnings tests/drills
