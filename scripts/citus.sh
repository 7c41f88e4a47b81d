#!/usr/bin/env bash
# Local Citus cluster for AlphaPulse:
#   scripts/citus.sh up|down|status|psql [args]|createdb NAME|dropdb NAME
#                    |add-worker PORT [DB...]|remove-worker PORT|restart-worker PORT
#
# up: makes Citus available (scripts/citus-install.sh), then a coordinator on
# 127.0.0.1:${CITUS_PORT:-54340} and ${CITUS_WORKERS:-2} workers on the ports
# after it, data in .citus/ (as the OS user `postgres` when run as root),
# listening on loopback only; the same roles as scripts/db.sh on every node;
# the `alphapulse` database with the citus extension on every node and the
# workers registered; .env.citus (the same variables as .env). Idempotent.
# `make citus-up` then runs migrate and load_demo on the coordinator.
#
# Node-to-node connections authenticate like any client (scram on loopback):
# the coordinator and the workers find the passwords of the superuser, the
# owner and the app role in pg_dist_authinfo (readable by superusers only).
# .env.citus also holds CITUS_ADMIN_DATABASE_URL (the superuser), for the
# shard-move commands only.
#
# createdb NAME: a database on every node, citus in each, the nodes registered
# in it (Citus keeps its metadata per database, and Django's test runner cannot
# build one: make test-citus and the tests' scratch databases use this).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CITUS_DIR="${ALPHAPULSE_CITUS_DIR:-$ROOT/.citus}"
ENV_FILE="${ALPHAPULSE_CITUS_ENV_FILE:-$ROOT/.env.citus}"
# The port `up` was first run with (kept in .env.citus) unless CITUS_PORT says otherwise.
CITUS_PORT="${CITUS_PORT:-$( (grep -E '^PGPORT=' "$ENV_FILE" 2>/dev/null || echo PGPORT=54340) | tail -n 1 | cut -d= -f2)}"
CITUS_WORKERS="${CITUS_WORKERS:-2}"
PGPORT="$CITUS_PORT" # the coordinator is what clients (and .env.citus) see
DB_NAME="alphapulse"
# APP_ROLE, OWNER_ROLE, BYPASS_ROLE: spelled once, for Python and the scripts alike.
# shellcheck source=../tenants/cluster_roles.env
. "$ROOT/tenants/cluster_roles.env"

say() { printf '\033[1m[citus]\033[0m %s\n' "$*"; }
die() { printf '[citus] error: %s\n' "$*" >&2; exit 1; }

pg_bindir() { dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)"; }

# as_pg and superuser: scripts/db-common.sh.

coordinator_dir() { echo "$CITUS_DIR/coordinator"; }
worker_dir() { echo "$CITUS_DIR/worker-$1"; }
# A node's directory, where its socket is. A failover standby promoted in place of a worker
# (scripts/citus-ha.sh) has no worker-PORT directory: its socket sits in its pair's.
node_dir() {
  local dir
  if [ "$1" = "$CITUS_PORT" ]; then coordinator_dir; return; fi
  for dir in "$CITUS_DIR"/worker-*; do
    if [ -S "$dir/.s.PGSQL.$1" ] && [ "${dir##*worker-}" != "$1" ]; then echo "$dir"; return; fi
  done
  worker_dir "$1"
}
# The workers started by `up`, any added later (add-worker), and the ones the coordinator
# names now (after a failover, the promoted standby), by port.
worker_ports() {
  local ports=() i dir
  for i in $(seq 1 "$CITUS_WORKERS"); do ports+=("$((CITUS_PORT + i))"); done
  for dir in "$CITUS_DIR"/worker-*; do [ -d "$dir" ] && ports+=("${dir##*worker-}"); done
  if [ -S "$(coordinator_dir)/.s.PGSQL.$CITUS_PORT" ]; then
    ports+=($(psql_node "$CITUS_PORT" "$DB_NAME" -tA \
      -c "SELECT nodeport FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary'" 2>/dev/null || true))
  fi
  printf '%s\n' "${ports[@]}" | sort -nu
}
# A standby (a failover pair's secondary) takes no DDL: its primary's WAL brings the change.
in_recovery() { [ "$(psql_node "$1" postgres -tA -c "SELECT pg_is_in_recovery()" 2>/dev/null)" = t ]; }
all_ports() { echo "$CITUS_PORT"; worker_ports; }

# psql as the superuser on one node: psql_node PORT DBNAME [psql args]
psql_node() {
  local port="$1" db="$2"
  shift 2
  as_pg env PGOPTIONS="-c client_min_messages=warning" "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$(node_dir "$port")" -p "$port" -U "$(superuser)" -d "$db" "$@"
}

# scripts/db-common.sh runs its SQL through psql_super on "the" server: the
# node in NODE_PORT here. On a worker, statements in the Citus database itself
# are skipped: Citus refuses extension DDL there ("operation is not allowed on
# this node") and the coordinator propagates it anyway.
NODE_PORT="$CITUS_PORT"
psql_super() {
  local db=postgres
  if [ "${1:-}" = "-d" ]; then db="$2"; shift 2; fi
  if [ "$NODE_PORT" != "$CITUS_PORT" ] && [ "$db" != postgres ] && [ "$db" != template1 ]; then return 0; fi
  psql_node "$NODE_PORT" "$db" "$@"
}
# shellcheck source=scripts/db-common.sh
source "$ROOT/scripts/db-common.sh"

superuser_password() {
  local file="$CITUS_DIR/superuser.password"
  if [ ! -s "$file" ]; then
    mkdir -p "$CITUS_DIR"
    (umask 077 && random_secret | tr -d '_-' | cut -c1-32 >"$file")
  fi
  cat "$file"
}

init_node() {
  local port="$1" dir
  dir="$(node_dir "$port")"
  [ -f "$dir/PG_VERSION" ] && return 0
  say "initdb node 127.0.0.1:$port into ${dir#"$ROOT"/}"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$CITUS_DIR" "$dir"
  chmod 700 "$dir"
  as_pg "$(pg_bindir)/initdb" -D "$dir" -U "$(superuser)" --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  as_pg tee -a "$dir/postgresql.conf" >/dev/null <<CONF

# AlphaPulse local Citus node (scripts/citus.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
shared_preload_libraries = 'citus,pg_stat_statements'
pg_stat_statements.track = top
max_connections = 200
shared_buffers = 128MB
# Shard moves use block_writes (tenants/citus_operations.py): logical
# replication cannot write into FORCE-RLS tables, so replica is enough.
wal_level = replica
log_min_duration_statement = 500
CONF
}

is_running() { as_pg "$(pg_bindir)/pg_ctl" -D "$(node_dir "$1")" status >/dev/null 2>&1; }

start_node() {
  local port="$1" dir
  dir="$(node_dir "$port")"
  is_running "$port" && return 0
  say "starting node 127.0.0.1:$port"
  # A port in 32768-60999 can be held for a moment as the local end of some
  # client connection (the kernel's ephemeral range): "Address already in use"
  # then clears within seconds, so try a few times before giving up.
  local attempt
  for attempt in 1 2 3 4 5 6; do
    as_pg "$(pg_bindir)/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null && return 0
    grep -q "Address already in use" "$dir/server.log" || break
    say "port $port is busy; retrying in 5 s ($attempt/6)"
    sleep 5
  done
  tail -n 20 "$dir/server.log" >&2
  die "node $port did not start (log above)"
}

stop_node() {
  local port="$1" dir
  dir="$(node_dir "$port")"
  if [ -f "$dir/PG_VERSION" ] && is_running "$port"; then
    say "stopping node 127.0.0.1:$port"
    as_pg "$(pg_bindir)/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
  fi
}

# The roles of scripts/db.sh on one node (created on each node directly, so the
# databases can be owned by the owner role before Citus knows the node), the
# superuser's password for node-to-node connections, and the app role's
# `SET LOCAL` forwarding to the workers.
node_roles() {
  NODE_PORT="$1"
  create_roles_and_database
  psql_super -d postgres -v su_pw="$(superuser_password)" <<SQL
SELECT format('ALTER ROLE %I PASSWORD %L', current_user, :'su_pw') \gexec
ALTER ROLE $APP_ROLE SET citus.propagate_set_commands = 'local';
SQL
}

database_exists() { [ "$(psql_node "$1" postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = '$2'")" = 1 ]; }

# The citus extension and the node-to-node passwords in database $2 of node $1.
node_database() {
  local port="$1" db="$2"
  database_exists "$port" "$db" || psql_node "$port" postgres -c "CREATE DATABASE \"$db\" OWNER $OWNER_ROLE"
  # Once citus is there, a worker refuses extension DDL (even IF NOT EXISTS).
  if [ "$(psql_node "$port" "$db" -tA -c "SELECT count(*) FROM pg_extension WHERE extname = 'citus'")" = 0 ]; then
    psql_node "$port" "$db" -c "SET client_min_messages = warning" \
      -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "CREATE EXTENSION citus"
  fi
  psql_node "$port" "$db" -v su_pw="$(superuser_password)" -v owner_pw="$(env_value OWNER_DB_PASSWORD)" \
    -v app_pw="$(env_value APP_DB_PASSWORD)" <<SQL
INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo)
VALUES (0, current_user, 'password=' || :'su_pw'),
       (0, '$OWNER_ROLE', 'password=' || :'owner_pw'),
       (0, '$APP_ROLE', 'password=' || :'app_pw')
ON CONFLICT (rolename, nodeid) DO UPDATE SET authinfo = EXCLUDED.authinfo;
SQL
  close_cluster_statistics "$port" "$db"
}

# Citus lets PUBLIC read its cluster-wide statistics and run SQL on other nodes.
# All tenants share the app role, so citus_query_stats() would show it every
# tenant's id (the partition key of each router query) and the activity views
# every session's statement, as pg_stat_activity did before scripts/db-common.sh
# closed it. The app never calls any of them: only the owner (operators, the
# layout tests' run_command_on_shards) keeps them. Per node and per database,
# because the extension creates these objects in each database it is created in.
close_cluster_statistics() {
  local port="$1" db="$2"
  # PostgreSQL's own (scripts/db-common.sh): on every node, in every database,
  # the workers' included; Citus propagates none of these.
  psql_node "$port" "$db" >/dev/null <<<"$(close_statistics_sql)"
  psql_node "$port" "$db" -v owner="$OWNER_ROLE" >/dev/null <<'SQL'
SELECT format('REVOKE ALL ON %s FROM PUBLIC', c.oid::regclass),
       format('GRANT SELECT ON %s TO %I', c.oid::regclass, :'owner')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('pg_catalog', 'citus')
   AND c.relname IN ('citus_stat_activity', 'citus_dist_stat_activity', 'citus_worker_stat_activity',
                     'citus_stat_statements', 'citus_lock_waits') \gexec
SELECT format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', p.oid::regprocedure),
       format('GRANT EXECUTE ON FUNCTION %s TO %I', p.oid::regprocedure, :'owner')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('pg_catalog', 'citus')
   AND p.proname IN ('citus_stat_activity', 'citus_dist_stat_activity', 'citus_worker_stat_activity',
                     'citus_query_stats', 'citus_stat_statements', 'run_command_on_workers',
                     'run_command_on_all_nodes', 'run_command_on_coordinator', 'run_command_on_placements',
                     'run_command_on_shards', 'run_command_on_colocated_placements') \gexec
SQL
}

# A worker added to a database that is already migrated receives its objects
# from Citus (functions included) but not the revokes the migrations made on
# the coordinator: TEMPORARY and CREATE on the database, EXECUTE on our own
# functions for PUBLIC. Mirror them from the coordinator (idempotent). On a
# worker, Citus refuses this DDL from a client session unless propagation is
# off for it (the coordinator already holds the truth).
mirror_revokes() {
  local port="$1" db="$2" statements
  statements="$(psql_node "$CITUS_PORT" "$db" -tA -v app="$APP_ROLE" <<'SQL'
SELECT format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC;', current_database())
 WHERE NOT has_database_privilege(:'app', current_database(), 'TEMPORARY');
SELECT format('REVOKE CREATE ON DATABASE %I FROM PUBLIC;', current_database())
 WHERE NOT has_database_privilege(:'app', current_database(), 'CREATE');
SELECT format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC;', p.oid::regprocedure)
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
   AND NOT has_function_privilege(:'app', p.oid, 'EXECUTE')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e');
SQL
)"
  [ -n "$statements" ] || return 0
  # A function the coordinator has and this worker does not (yet) is skipped.
  psql_node "$port" "$db" -v ON_ERROR_STOP=0 >/dev/null 2>&1 <<SQL || true
SET citus.enable_ddl_propagation TO off;
$statements
SQL
}

register_worker() {
  local db="$1" port="$2"
  psql_node "$CITUS_PORT" "$db" -v port="$port" >/dev/null <<'SQL'
SELECT count(citus_add_node('127.0.0.1', :port))
  FROM (SELECT WHERE NOT EXISTS (SELECT FROM pg_dist_node WHERE nodename = '127.0.0.1' AND nodeport = :port)) AS missing;
SQL
}

# Database $1 on every node, ready for Citus: the extension, the passwords,
# the coordinator's host and every worker registered. Idempotent.
prepare_database() {
  local db="$1" port
  for port in $(all_ports); do in_recovery "$port" || node_database "$port" "$db"; done
  psql_node "$CITUS_PORT" "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_PORT)" >/dev/null
  for port in $(worker_ports); do
    in_recovery "$port" && continue
    register_worker "$db" "$port"
    mirror_revokes "$port" "$db"
  done
}

drop_database() {
  local db="$1" port
  [ "$db" != "$DB_NAME" ] || die "refusing to drop the cluster's own database $DB_NAME"
  # Workers first: the coordinator's metadata still names them.
  for port in $(worker_ports) "$CITUS_PORT"; do
    is_running "$port" || continue
    in_recovery "$port" && continue
    # FORCE ends client sessions, but a session that just closed (or Citus's
    # maintenance daemon of that database, started by a direct connection to a
    # worker) can still be counted for a moment: try again briefly.
    local attempt
    for attempt in 1 2 3 4 5; do
      psql_node "$port" postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" 2>/dev/null && break
      [ "$attempt" = 5 ] && psql_node "$port" postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
      sleep 1
    done
  done
}

valid_name() { [[ "$1" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "database name must match [a-z_][a-z0-9_]*: $1"; }
valid_port() { [[ "$1" =~ ^[0-9]{4,5}$ ]] || die "not a port: $1"; }

# Databases of the coordinator that hold the citus extension.
citus_databases() {
  local db
  for db in $(psql_node "$CITUS_PORT" postgres -tA -c "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate"); do
    [ "$(psql_node "$CITUS_PORT" "$db" -tA -c "SELECT count(*) FROM pg_extension WHERE extname = 'citus'")" = 1 ] && echo "$db"
  done
}

# Shard moves copy rows into FORCE-RLS tables, which only a superuser may do
# (PostgreSQL refuses COPY under RLS, the owner included): manage.py
# citus_rebalance / citus_move_tenant connect with this URL (tenants/catalog/shard_moves.py).
write_admin_url() {
  grep -q '^CITUS_ADMIN_DATABASE_URL=' "$ENV_FILE" && return 0
  printf 'CITUS_ADMIN_DATABASE_URL=postgres://%s:%s@127.0.0.1:%s/%s\n' \
    "$(superuser)" "$(superuser_password)" "$CITUS_PORT" "$DB_NAME" >>"$ENV_FILE"
}

# The API's cache, rate limits and Celery broker live in Redis: the cluster
# gets a Redis of its own (scripts/redis.sh, data in .citus/redis, port
# CITUS_REDIS_PORT or CITUS_PORT+9), its REDIS_URL in .env.citus.
cluster_redis() {
  [ -x "$ROOT/scripts/redis.sh" ] || return 0
  local port
  # The redis user must reach .citus/redis (each node's own directory stays 700).
  mkdir -p "$CITUS_DIR" && chmod 755 "$CITUS_DIR"
  port="${CITUS_REDIS_PORT:-$( (grep -E '^REDIS_PORT=' "$ENV_FILE" 2>/dev/null || echo "REDIS_PORT=$((CITUS_PORT + 9))") | tail -n 1 | cut -d= -f2)}"
  ALPHAPULSE_REDIS_DIR="$CITUS_DIR/redis" ALPHAPULSE_ENV_FILE="$ENV_FILE" REDIS_PORT="$port" "$ROOT/scripts/redis.sh" "$1"
}

cmd_up() {
  "$ROOT/scripts/citus-install.sh"
  write_env
  ensure_metrics_token
  ensure_long_secret_key
  write_admin_url
  cluster_redis up
  local port
  # Every node up before any role SQL: on a cluster that was stopped, the
  # coordinator already knows its workers and forwards ALTER ROLE to them.
  for port in $(all_ports); do
    init_node "$port"
    start_node "$port"
  done
  for port in $(all_ports); do node_roles "$port"; done
  prepare_database "$DB_NAME"
  say "ready: coordinator postgres://127.0.0.1:$CITUS_PORT/$DB_NAME, workers $(worker_ports | paste -sd, -) (${ENV_FILE#"$ROOT"/})"
}

cmd_down() {
  local port any=""
  for port in $(worker_ports) "$CITUS_PORT"; do
    if [ -f "$(node_dir "$port")/PG_VERSION" ] && is_running "$port"; then stop_node "$port"; any=1; fi
  done
  [ -n "$any" ] || say "the cluster is not running"
  cluster_redis down
}

cmd_status() {
  local port down=0
  for port in $(all_ports); do
    if [ -f "$(node_dir "$port")/PG_VERSION" ] && is_running "$port"; then
      say "node 127.0.0.1:$port running"
    else
      say "node 127.0.0.1:$port not running"
      down=1
    fi
  done
  [ "$down" = 0 ] && psql_node "$CITUS_PORT" "$DB_NAME" -c "SELECT nodename, nodeport, noderole, isactive FROM pg_dist_node ORDER BY nodeport"
  return "$down"
}

# A worker on PORT (kept in .citus/worker-PORT), registered in the databases
# named after it (default: every Citus database of the coordinator): the
# first step of a scale-out. Its shards come with a rebalance.
cmd_add_worker() {
  local port="$1" db dbs
  shift
  valid_port "$port"
  [ "$port" != "$CITUS_PORT" ] || die "$port is the coordinator"
  for db in "$@"; do valid_name "$db"; done
  dbs="${*:-$(citus_databases)}"
  init_node "$port"
  start_node "$port"
  node_roles "$port"
  for db in $dbs; do
    node_database "$port" "$db"
    register_worker "$db" "$port"
    mirror_revokes "$port" "$db"
  done
  say "worker 127.0.0.1:$port added"
}

# Takes an (empty: drained) worker out of every database and stops it.
cmd_remove_worker() {
  local port="$1" db
  valid_port "$port"
  for db in $(citus_databases); do
    psql_node "$CITUS_PORT" "$db" -v port="$port" >/dev/null <<'SQL'
SELECT count(citus_remove_node('127.0.0.1', :port))
  FROM (SELECT WHERE EXISTS (SELECT FROM pg_dist_node WHERE nodename = '127.0.0.1' AND nodeport = :port)) AS present;
SQL
  done
  stop_node "$port"
  rm -rf "$(worker_dir "$port")"
  say "worker 127.0.0.1:$port removed"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  psql) shift; psql_node "$CITUS_PORT" "$DB_NAME" "$@" ;;
  createdb) valid_name "${2:?database name}"; drop_database "$2"; prepare_database "$2" ;;
  dropdb) valid_name "${2:?database name}"; drop_database "$2" ;;
  add-worker) shift; cmd_add_worker "${1:?port}" "${@:2}" ;;
  remove-worker) cmd_remove_worker "${2:?port}" ;;
  restart-worker)
    valid_port "${2:?port}"
    as_pg "$(pg_bindir)/pg_ctl" -D "$(worker_dir "$2")" -m fast -w -t 60 restart -l "$(worker_dir "$2")/server.log" >/dev/null
    ;;
  *) echo "usage: scripts/citus.sh up|down|status|psql|createdb NAME|dropdb NAME|add-worker PORT [DB...]|remove-worker PORT|restart-worker PORT" >&2; exit 2 ;;
esac
