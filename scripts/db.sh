#!/usr/bin/env bash
# Local PostgreSQL for AlphaPulse: `scripts/db.sh up|down|status|psql|env`.
#
# up: installs PostgreSQL with apt-get when initdb is missing, creates the
# cluster in .pgdata/ (as the OS user `postgres` when run as root: the server
# refuses root), listens on 127.0.0.1:${PGPORT:-54329} only, writes .env with
# random secrets, and creates the roles and the database. Every step is
# idempotent: a second run reuses what is there.
#
# ALPHAPULSE_PGDATA and ALPHAPULSE_ENV_FILE put a second, throw-away cluster
# elsewhere (the database-restart drill stops and starts its own).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGDATA="${ALPHAPULSE_PGDATA:-$ROOT/.pgdata}"
PGPORT="${PGPORT:-54329}"
ENV_FILE="${ALPHAPULSE_ENV_FILE:-$ROOT/.env}"
DB_NAME="alphapulse"
APP_ROLE="alphapulse_app"
OWNER_ROLE="alphapulse_owner"
BYPASS_ROLE="rls_bypass_role"

say() { printf '\033[1m[db]\033[0m %s\n' "$*"; }
die() { printf '[db] error: %s\n' "$*" >&2; exit 1; }

pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$dir" ] && command -v initdb >/dev/null 2>&1; then dir=$(dirname "$(readlink -f "$(command -v initdb)")"); fi
  echo "$dir"
}

ensure_installed() {
  [ -n "$(pg_bindir)" ] && return 0
  say "PostgreSQL is not installed; installing it with apt-get"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql postgresql-contrib >/dev/null
  [ -n "$(pg_bindir)" ] || die "apt-get finished but no PostgreSQL binaries were found"
}

# As root, PostgreSQL must run as the OS user postgres.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

superuser() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }

psql_super() {
  as_pg "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGDATA" -p "$PGPORT" -U "$(superuser)" "$@"
}

random_secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

write_env() {
  [ -f "$ENV_FILE" ] && return 0
  say "writing .env with random local secrets"
  local app_pw owner_pw
  app_pw=$(random_secret | tr -d '_-' | cut -c1-32)
  owner_pw=$(random_secret | tr -d '_-' | cut -c1-32)
  umask 077
  cat >"$ENV_FILE" <<ENV
# Written by scripts/db.sh (make setup). Local secrets only; real environment variables win.
SECRET_KEY=$(random_secret)
JWT_SIGNING_KEY=$(random_secret)
DEBUG=false
ALLOWED_HOSTS=127.0.0.1,localhost
RLS_ENABLED=true
PGPORT=$PGPORT
APP_DB_PASSWORD=$app_pw
OWNER_DB_PASSWORD=$owner_pw
DATABASE_URL=postgres://$APP_ROLE:$app_pw@127.0.0.1:$PGPORT/$DB_NAME
MIGRATION_DATABASE_URL=postgres://$OWNER_ROLE:$owner_pw@127.0.0.1:$PGPORT/$DB_NAME
ADMIN_USERNAME=admin
ADMIN_PASSWORD=$(random_secret | cut -c1-20)
ENV
}

env_value() { grep -E "^$1=" "$ENV_FILE" | tail -n 1 | cut -d= -f2-; }

init_cluster() {
  [ -f "$PGDATA/PG_VERSION" ] && return 0
  say "initdb into $PGDATA"
  mkdir -p "$PGDATA"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$PGDATA"
  chmod 700 "$PGDATA"
  as_pg "$(pg_bindir)/initdb" -D "$PGDATA" -U "$(superuser)" --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$PGDATA/postgresql.conf" <<CONF

# AlphaPulse local cluster (scripts/db.sh)
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGDATA'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = top
max_connections = 200
shared_buffers = 256MB
fsync = on
log_min_duration_statement = 500
CONF
}

is_running() { as_pg "$(pg_bindir)/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

start_server() {
  if is_running; then return 0; fi
  say "starting PostgreSQL on 127.0.0.1:$PGPORT"
  as_pg "$(pg_bindir)/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 start >/dev/null \
    || { tail -n 20 "$PGDATA/server.log" >&2; die "PostgreSQL did not start (log above)"; }
}

create_roles_and_database() {
  local app_pw owner_pw
  app_pw=$(env_value APP_DB_PASSWORD)
  owner_pw=$(env_value OWNER_DB_PASSWORD)
  [ -n "$app_pw" ] && [ -n "$owner_pw" ] || die ".env lacks APP_DB_PASSWORD/OWNER_DB_PASSWORD; delete .env and rerun"
  # format() with %I/%L quotes identifiers and literals server-side.
  psql_super -d postgres -v app_pw="$app_pw" -v owner_pw="$owner_pw" <<SQL
SELECT format('CREATE ROLE %I NOLOGIN', '$BYPASS_ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$BYPASS_ROLE') \gexec
SELECT format('CREATE ROLE %I LOGIN', '$OWNER_ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$OWNER_ROLE') \gexec
SELECT format('CREATE ROLE %I LOGIN', '$APP_ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$APP_ROLE') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB NOCREATEROLE PASSWORD %L', '$OWNER_ROLE', :'owner_pw') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD %L', '$APP_ROLE', :'app_pw') \gexec
-- The owner holds the bypass (and may hand it out in an emergency, section 6).
GRANT $BYPASS_ROLE TO $OWNER_ROLE WITH ADMIN OPTION;
-- The app role's guard rails: a runaway query or an abandoned transaction
-- ends with an error instead of holding a worker and locks.
ALTER ROLE $APP_ROLE SET statement_timeout = '15s';
ALTER ROLE $APP_ROLE SET lock_timeout = '5s';
ALTER ROLE $APP_ROLE SET idle_in_transaction_session_timeout = '60s';
-- Django's own time zone: it then sends no session-level SET TIME ZONE on
-- connect, so the app keeps no session state (safe behind PgBouncer's
-- transaction pooling, tests/drills/test_pgbouncer.py).
ALTER ROLE $APP_ROLE SET timezone = 'UTC';
-- SET LOCAL app.current_tenant_id takes no parameters, so its text names the
-- tenant; every app session can read pg_stat_statements: keep utility
-- statements out of it for the app role (tests/tenants/test_statement_visibility.py).
ALTER ROLE $APP_ROLE SET pg_stat_statements.track_utility = off;
SELECT format('CREATE DATABASE %I OWNER %I', '$DB_NAME', '$OWNER_ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DB_NAME') \gexec
SQL
  # Every database created later (test databases too) gets pg_stat_statements.
  psql_super -d template1 -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
  psql_super -d "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
}

cmd_up() {
  ensure_installed
  write_env
  init_cluster
  start_server
  create_roles_and_database
  say "ready: postgres://127.0.0.1:$PGPORT/$DB_NAME (roles $OWNER_ROLE, $APP_ROLE)"
}

cmd_down() {
  if [ -f "$PGDATA/PG_VERSION" ] && is_running; then
    say "stopping PostgreSQL"
    as_pg "$(pg_bindir)/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  else
    say "PostgreSQL is not running"
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  start) start_server ;;
  status) is_running && say "running on 127.0.0.1:$PGPORT" || { say "not running"; exit 1; } ;;
  psql) shift; psql_super -d "$DB_NAME" "$@" ;;
  *) echo "usage: scripts/db.sh up|down|start|status|psql" >&2; exit 2 ;;
esac
