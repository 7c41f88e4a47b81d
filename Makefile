# AlphaPulse: the one entry point. `make run` serves the API; `make test` proves it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
WORKERS ?= 2
export PGPORT ?= 54329
# ENV_FILE=.env.citus: setup, run, migrate, ... use the Citus cluster (make citus-up).
DB_SCRIPT := $(if $(findstring .env.citus,$(ENV_FILE)),scripts/citus.sh,scripts/db.sh)
# The cluster's own Redis comes up with it (scripts/citus.sh up).
REDIS_UP := $(if $(findstring .env.citus,$(ENV_FILE)),true,scripts/redis.sh up)

.PHONY: help venv setup run test lint format db-up db-down psql migrate backup restore load-test \
        bench bench-data bench-scale rehearse drills redis-up redis-down services-down worker beat \
        citus-up citus-down citus-psql test-citus citus-drills bench-citus \
        pitr-setup pitr-backup pitr-info pitr-restore pitr-drop pitr-find pitr-receiver-up pitr-receiver-down pitr-receiver-status tenant-pitr \
        citus-pitr-setup citus-pitr-backup citus-restore-point citus-pitr-points citus-pitr-restore citus-pitr-drop citus-ha-up citus-ha-down

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Production installs requirements.txt alone; this venv (make test, bench, run) takes the dev set too.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed ## create .venv and install requirements-dev.txt (runtime + tests, lint, bench)

db-up: ## start the local PostgreSQL in .pgdata/ (installs it if missing), roles, database, .env
	@$(DB_SCRIPT) up

db-down: ## stop the local PostgreSQL and Redis
	@$(DB_SCRIPT) down
	@scripts/redis.sh down

redis-up: db-up ## start the local Redis in .redis/ (installs it if missing), REDIS_URL in .env
	@$(REDIS_UP)

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

# One `make run` per checkout: a second would start a second beat (every job sent twice) and
# empty .metrics/ under the first. The lock is held by the running honcho (and its children)
# and goes with them, however they end.
RUN_LOCK := .run/make-run.lock
REFUSE_SECOND_RUN = { echo "make run: this checkout is already running (pid $$(cat $(RUN_LOCK) 2>/dev/null), lock $(RUN_LOCK)). Stop it first (Ctrl-C in its terminal); for a second server use another checkout (git worktree add)." >&2; exit 1; }

run: ## set up, then serve the API on 127.0.0.1, port PORT (default 8000), with a Celery worker and beat (foreground; Ctrl-C stops all; one per checkout)
	@mkdir -p .run .celery
	@flock -n $(RUN_LOCK) true || $(REFUSE_SECOND_RUN)
	@$(MAKE) --no-print-directory setup
	@# One prometheus-client directory for gunicorn's workers and Celery's pool children, emptied
	@# at each start, so the API's /metrics counts the jobs too (jobs/metrics.py).
	@# --env /dev/null: settings read .env themselves; honcho must not turn it into real variables.
	@exec 9>>$(RUN_LOCK); flock -n 9 || $(REFUSE_SECOND_RUN); echo $$$$ > $(RUN_LOCK); \
		rm -rf .metrics && mkdir -p .metrics && \
		PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/.metrics API_PORT=$(PORT) WORKERS=$(WORKERS) \
		GUNICORN_CONTROL_SOCKET=$(CURDIR)/.run/gunicorn.ctl \
		exec $(VENV)/bin/honcho start --env /dev/null -f Procfile

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

# Continuous archiving and point-in-time recovery (pgBackRest; repository in .pgbackrest/): docs/runbook.md.
pitr-setup: venv db-up ## WAL archiving of the local PostgreSQL with pgBackRest (installs it; one restart the first time); idempotent
	@scripts/pitr.sh setup

pitr-backup: db-up ## an online pgBackRest backup (TYPE=full|diff|incr, default incr; the first is full)
	@scripts/pitr.sh backup $(TYPE)

pitr-info: ## the pgBackRest backups and archive range
	@scripts/pitr.sh info

pitr-restore: ## the database as at AT="<time with zone>" or just before BEFORE_XID=<xid>, into .pitr/<port>/ on a free port (RESTORE_PORT=)
	@scripts/pitr.sh restore

pitr-drop: ## stop and delete the PITR copy on RESTORE_PORT=<port>
	@scripts/pitr.sh drop $(RESTORE_PORT)

pitr-find: venv ## large committed DELETE/UPDATE/TRUNCATE transactions in the archived WAL: SINCE="<time>" [UNTIL=] [TABLE=trades] [MIN_ROWS=100]
	@scripts/pitr.sh find

pitr-receiver-up: db-up ## RPO 0: a synchronous WAL receiver (pg_receivewal) into WAL_RECEIVER_DIR (default .walreceiver/); every commit waits for its flush
	@scripts/pitr.sh receiver-up

pitr-receiver-down: ## clear synchronous_standby_names first, then stop the receiver and drop its slot
	@scripts/pitr.sh receiver-down

pitr-receiver-status: ## the receiver's process, setting and flushed position
	@scripts/pitr.sh receiver-status

tenant-pitr: venv ## one tenant back: SLUG=<slug> AT="<time>"|BEFORE_XID=<xid> [MODE=merge|replace] [TABLES="trades ..."]
	@scripts/tenant-pitr.sh

citus-pitr-setup: ## WAL archiving of every Citus node (one pgBackRest stanza per node); idempotent
	@scripts/citus-pitr.sh setup

citus-pitr-backup: ## an online backup of every Citus node (TYPE=full|diff|incr), then a named restore point (NAME=)
	@scripts/citus-pitr.sh backup $(TYPE)

citus-restore-point: ## citus_create_restore_point (NAME=, default rp-<time>) + a WAL switch on every node; cron it every minute
	@scripts/citus-pitr.sh point $(NAME)

citus-pitr-points: ## the cluster's restore points made here
	@scripts/citus-pitr.sh points

citus-pitr-restore: ## the whole cluster at restore point NAME=, into .pitr/citus-<NAME>/ on new ports (BASE_PORT=); time targets refused
	@scripts/citus-pitr.sh restore

citus-pitr-drop: ## stop and delete the restored cluster NAME=
	@scripts/citus-pitr.sh drop

citus-ha-up: venv ## one Citus worker as a synchronous pg_auto_failover pair (+ follower running citus_update_node); globex moved onto it; HA_WORKERS=all: every worker a pair
	@scripts/citus-ha.sh up

citus-ha-down: ## stop the pairs' keepers, the monitor and the followers
	@scripts/citus-ha.sh down

BENCH_DB ?= alphapulse_bench
REHEARSE_DB ?= alphapulse_rehearse

bench-data: venv db-up ## (re)build the bench database (BENCH_DB=alphapulse_bench): migrate, COPY 1M trades in 100 skewed tenants, ANALYZE
	PYTHONPATH=scripts $(PY) -m bench.data --db-name $(BENCH_DB)

bench: venv db-up ## RLS ON vs OFF vs the single-tenant floor, interleaved, on copies of the bench database -> docs/benchmarks/
	PYTHONPATH=scripts $(PY) -m bench.threeway --db $(BENCH_DB)

bench-scale: venv db-up ## p50/p99 of a small tenant and the whale at 100/1,000/10,000 tenants and 1M/10M trades, RLS ON, with plans -> docs/benchmarks/scale.md (SCALE=100,1000 for a subset)
	PYTHONPATH=scripts $(PY) -m bench.scale

load-test: venv db-up ## the seed's k6 test (target-capacity-test.js) against RLS ON and its OFF twin on the bench database -> docs/benchmarks/load-test.md
	PYTHONPATH=scripts $(PY) -m bench.loadtest --db $(BENCH_DB)

rehearse: venv db-up ## migrate a 1M-trade legacy database under old-app traffic -> docs/benchmarks/rehearsal.md
	PYTHONPATH=scripts $(PY) -m bench.rehearse --db $(REHEARSE_DB)

drills: venv db-up redis-up ## reliability drills: PgBouncer, database restart, rollback scenarios 1-2, offboarding under load, PITR, one tenant back, the synchronous WAL receiver (~8 min)
	$(VENV)/bin/pytest -m drill -s -p no:warnings tests/drills

citus-up: venv ## Citus cluster in .citus/ (builds Citus if missing): coordinator on CITUS_PORT (default 54340), workers, migrate, demo data, .env.citus
	@scripts/citus.sh up
	ENV_FILE=.env.citus $(PY) manage.py migrate
	ENV_FILE=.env.citus $(PY) manage.py load_demo

citus-down: ## stop the Citus cluster
	@scripts/citus.sh down

citus-psql: ## psql into the coordinator's database as the superuser
	@scripts/citus.sh psql

test-citus: venv ## the isolation and API suites on the Citus cluster, as the app role, on a distributed test database
	@scripts/citus.sh up
	@scripts/test-citus.sh

citus-drills: venv ## online operations on the cluster under mixed-tenant load: add a worker + rebalance, isolate + move a tenant, worker restart; restore point + guarded cluster restore; restore_tenant
	@scripts/citus.sh up
	ENV_FILE=.env.citus TEST_ON_CITUS=1 TEST_DB_NAME=test_alphapulse_citus_drills $(VENV)/bin/pytest -m drill -s -p no:warnings tests/citus_drills

bench-citus: venv db-up ## single node vs Citus cluster through the API, interleaved -> docs/benchmarks/citus.md
	@scripts/citus.sh up
	PYTHONPATH=scripts $(PY) -m bench.citus
