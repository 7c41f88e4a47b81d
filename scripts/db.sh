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
# APP_ROLE, OWNER_ROLE, BYPASS_ROLE: spelled once, for Python and the scripts alike.
# shellcheck source=../tenants/cluster_roles.env
. "$ROOT/tenants/cluster_roles.env"

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

# as_pg and superuser (the OS user postgres when root) come from scripts/db-common.sh.

psql_super() {
  as_pg "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGDATA" -p "$PGPORT" -U "$(superuser)" "$@"
}

# random_secret, write_env, env_value, create_roles_and_database: shared with
# scripts/citus.sh.
# shellcheck source=scripts/db-common.sh
source "$ROOT/scripts/db-common.sh"

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

cmd_up() {
  ensure_installed
  write_env
  ensure_metrics_token
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
