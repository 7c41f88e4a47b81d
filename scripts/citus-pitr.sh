#!/usr/bin/env bash
# Continuous archiving and consistent point-in-time recovery of the local Citus cluster (.citus/):
#   scripts/citus-pitr.sh setup            archiving on every node, one pgBackRest stanza per node (citus-<port>)
#   scripts/citus-pitr.sh backup [TYPE]    an online backup of every node (in parallel), then a restore point
#   scripts/citus-pitr.sh point [NAME]     citus_create_restore_point(NAME) + a WAL switch on every node, so the
#                                          point is in the archive at once (run it every minute from cron)
#   scripts/citus-pitr.sh points           the restore points made here (name, time, coordinator LSN)
#   scripts/citus-pitr.sh restore NAME     every node to NAME, into .pitr/citus-<NAME>/<port>/ on new ports
#                                          (BASE_PORT=, default CITUS_PORT + 30), with the guard below
#   scripts/citus-pitr.sh drop NAME        stop and delete that restored cluster
#
# Only named restore points: each node stops at the same logical point (Citus blocks 2PC commits while it
# writes the point on every node). A timestamp is refused: each node would stop at its own clock's idea of
# that second, and a two-phase commit applied on one worker but not on another cannot be repaired.
#
# The guard: a restored coordinator still names the LIVE workers in pg_dist_node, and Citus's background
# work (2PC recovery, deferred shard cleanup, the background task queue, deadlock detection) would act on
# them: roll back the live cluster's prepared transactions, drop its shards. So the copies first start with
# that background work off, pg_dist_node is rewritten locally on every restored node (no cross-node call,
# unlike citus_update_node, which syncs metadata to whatever nodes it names), checked, and only then is the
# background work switched back on and recover_prepared_transactions() run inside the copy.
#
# Exit codes: 0 done; 1 failed; 2 refused (bad arguments, unknown restore point, a port in use, not set up).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CITUS_DIR="${ALPHAPULSE_CITUS_DIR:-$ROOT/.citus}"
ENV_FILE="${ALPHAPULSE_CITUS_ENV_FILE:-$ROOT/.env.citus}"
CITUS_PORT="${CITUS_PORT:-$( (grep -E '^PGPORT=' "$ENV_FILE" 2>/dev/null || echo PGPORT=54340) | tail -n 1 | cut -d= -f2)}"
PB_DIR="${PGBACKREST_DIR:-$ROOT/.pgbackrest}"
PB_CONF="$PB_DIR/citus.conf"
POINTS="$PB_DIR/citus-restore-points.log"
COPIES="${PITR_COPIES_DIR:-$ROOT/.pitr}"
DB_NAME="alphapulse"
ARCHIVE_TIMEOUT="${ARCHIVE_TIMEOUT:-60}"
GUARD_MARK="# citus-pitr guard: Citus background work off until pg_dist_node names the copies"

say() { printf '\033[1m[citus-pitr]\033[0m %s\n' "$*" >&2; }
die() { printf '[citus-pitr] error: %s\n' "$*" >&2; exit 1; }
refuse() { printf '[citus-pitr] refused: %s\n' "$*" >&2; exit 2; }

# shellcheck source=scripts/db-common.sh
source "$ROOT/scripts/db-common.sh"
# shellcheck source=scripts/apt-common.sh
source "$ROOT/scripts/apt-common.sh"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
owner() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
node_dir() { if [ "$1" = "$CITUS_PORT" ]; then echo "$CITUS_DIR/coordinator"; else echo "$CITUS_DIR/worker-$1"; fi; }
# The coordinator first, then every worker directory (those of `up` and of add-worker).
node_ports() {
  echo "$CITUS_PORT"
  local dir
  for dir in "$CITUS_DIR"/worker-*; do [ -f "$dir/PG_VERSION" ] && echo "${dir##*worker-}"; done
  return 0
}
psql_at() { # psql_at DIR PORT DB [args]
  local dir="$1" port="$2" db="$3"
  shift 3
  as_pg env PGOPTIONS="-c client_min_messages=warning" "$(bindir)/psql" -X -q -At -v ON_ERROR_STOP=1 \
    -h "$dir" -p "$port" -U "$(superuser)" -d "$db" "$@"
}
running() { as_pg "$(bindir)/pg_ctl" -D "$1" status >/dev/null 2>&1; }
pb() { local port="$1"; shift; as_pg pgbackrest --config="$PB_CONF" --stanza="citus-$port" "$@"; }
valid_name() { [[ "$1" =~ ^[A-Za-z0-9_-]{1,60}$ ]]; }

write_config() {
  mkdir -p "$PB_DIR"/{repo,log,lock,spool}
  {
    cat <<CONF
# Written by scripts/citus-pitr.sh for this checkout's Citus cluster (coordinator :$CITUS_PORT).
[global]
repo1-path=$PB_DIR/repo
repo1-retention-full=${PITR_RETENTION_FULL:-2}
log-path=$PB_DIR/log
lock-path=$PB_DIR/lock
spool-path=$PB_DIR/spool
log-level-console=error
log-level-stderr=error
start-fast=y
compress-type=zst
process-max=1
CONF
    local port
    for port in $(node_ports); do
      printf '\n[citus-%s]\npg1-path=%s\npg1-port=%s\npg1-socket-path=%s\npg1-user=%s\n' \
        "$port" "$(node_dir "$port")" "$port" "$(node_dir "$port")" "$(superuser)"
    done
  } >"$PB_CONF.new"
  mv "$PB_CONF.new" "$PB_CONF"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$PB_DIR"; fi
  chmod 700 "$PB_DIR"
  chmod 600 "$PB_CONF"
}

require_setup() {
  [ -f "$PB_CONF" ] || refuse "archiving is not set up on the cluster: run make citus-pitr-setup first"
}

cmd_setup() {
  local port dir
  for port in $(node_ports); do running "$(node_dir "$port")" || refuse "node :$port is not running: make citus-up first"; done
  command -v pgbackrest >/dev/null 2>&1 || apt_install_pinned pgbackrest
  write_config
  for port in $(node_ports); do
    dir="$(node_dir "$port")"
    psql_at "$dir" "$port" postgres -v cmd="pgbackrest --config=$PB_CONF --stanza=citus-$port archive-push %p" \
      -v timeout="$ARCHIVE_TIMEOUT" >/dev/null <<'SQL'
ALTER SYSTEM SET archive_mode = 'on';
ALTER SYSTEM SET archive_command = :'cmd';
ALTER SYSTEM SET archive_timeout = :'timeout';
SELECT pg_reload_conf();
SQL
    if [ "$(psql_at "$dir" "$port" postgres -c 'SHOW archive_mode')" != "on" ]; then
      say "restarting node :$port once to turn archive_mode on"
      as_pg "$(bindir)/pg_ctl" -D "$dir" -m fast -w -t 60 restart -l "$dir/server.log" >/dev/null
    fi
    if ! pb "$port" info --output=json 2>/dev/null | grep -q '"status":{"code":0'; then
      pb "$port" stanza-create >/dev/null || die "stanza-create failed for :$port (log in $PB_DIR/log)"
    fi
    pb "$port" check || die "pgbackrest check failed for :$port"
  done
  say "archiving on for $(node_ports | paste -sd, -): stanzas citus-<port> in ${PB_DIR#"$ROOT"/}/repo"
}

cmd_point() {
  local name="${1:-rp-$(date -u +%Y%m%dT%H%M%SZ)}"
  valid_name "$name" || refuse "NAME '$name' must be 1-60 letters, digits, - or _"
  require_setup
  grep -q "^$name " "$POINTS" 2>/dev/null && refuse "a restore point named $name exists already"
  local lsn port started
  started=$(date +%s%N)
  lsn="$(psql_at "$CITUS_DIR/coordinator" "$CITUS_PORT" "$DB_NAME" -c "SELECT citus_create_restore_point('$name')")"
  local took=$((($(date +%s%N) - started) / 1000000))
  # The point is in each node's current WAL segment: switch, so it is archived now, not archive_timeout later.
  for port in $(node_ports); do psql_at "$(node_dir "$port")" "$port" postgres -c "SELECT pg_switch_wal()" >/dev/null; done
  echo "$name $(date -u '+%Y-%m-%dT%H:%M:%S+00') $lsn" >>"$POINTS"
  say "restore point $name at coordinator LSN $lsn (citus_create_restore_point: $took ms); WAL switched on every node"
  echo "NAME=$name"
}

cmd_backup() {
  local type="${1:-incr}" port pids=() failed=0 started=$SECONDS
  case "$type" in full | diff | incr) ;; *) refuse "TYPE must be full, diff or incr, not '$type'" ;; esac
  require_setup
  write_config
  for port in $(node_ports); do
    pb "$port" --type="$type" backup &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ "$failed" -eq 0 ] || die "a node's backup failed (log in $PB_DIR/log)"
  say "backup ($type) of $(node_ports | wc -l) nodes in $((SECONDS - started)) s"
  cmd_point "${NAME:-}"
}

cmd_points() {
  [ -s "$POINTS" ] || { say "no restore point yet: make citus-pitr-backup"; return 0; }
  cat "$POINTS"
}

cmd_restore() {
  local name="${NAME:-${1:-}}"
  [ -z "${AT:-}${BEFORE_XID:-}" ] || refuse "the cluster is restored to a named restore point only: a time or an xid is cut on each node by its own clock or counter, and a two-phase commit half-applied across workers cannot be repaired. Pick a NAME from: make citus-pitr-points"
  [ -n "$name" ] || refuse "give NAME=<restore point> (make citus-pitr-points lists them)"
  valid_name "$name" || refuse "NAME '$name' is not a restore point name"
  require_setup
  grep -q "^$name " "$POINTS" 2>/dev/null || refuse "no restore point named $name here (make citus-pitr-points)"
  local base="${BASE_PORT:-$((CITUS_PORT + 30))}" ports=() port i=0 new
  mapfile -t ports < <(node_ports)
  declare -A to
  for port in "${ports[@]}"; do
    new=$((base + i))
    port_in_use "$new" && refuse "port $new is in use: choose another BASE_PORT"
    to[$port]=$new
    i=$((i + 1))
  done
  local top="$COPIES/citus-$name"
  [ -e "$top" ] && refuse "$top exists: scripts/citus-pitr.sh drop $name first"
  mkdir -p "$top"
  local started=$SECONDS pids=() failed=0
  for port in "${ports[@]}"; do
    install -d -m 700 -o "$(owner)" "$top/$port"
    pb "$port" "--pg1-path=$top/$port" --type=name "--target=$name" --target-action=promote --archive-mode=off restore &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ "$failed" -eq 0 ] || { rm -rf "$top"; die "a node's restore failed (log in $PB_DIR/log); nothing started"; }
  for port in "${ports[@]}"; do
    cat >>"$top/$port/postgresql.conf" <<CONF

# Restored copy of node :$port to restore point $name (scripts/citus-pitr.sh)
port = ${to[$port]}
unix_socket_directories = '$top/$port'
$GUARD_MARK
citus.recover_2pc_interval = -1 $GUARD_MARK
citus.distributed_deadlock_detection_factor = -1 $GUARD_MARK
citus.defer_shard_delete_interval = -1 $GUARD_MARK
citus.background_task_queue_interval = -1 $GUARD_MARK
CONF
    as_pg "$(bindir)/pg_ctl" -D "$top/$port" -l "$top/$port/pitr-copy.log" -w -t 600 start >/dev/null 2>&1 &
  done
  wait
  for port in "${ports[@]}"; do
    for i in $(seq 1 600); do
      [ "$(psql_at "$top/$port" "${to[$port]}" postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = "f" ] && break
      running "$top/$port" || die "restored node :${to[$port]} stopped: $(grep -E 'FATAL|PANIC' "$top/$port/pitr-copy.log" | tail -n 1)"
      sleep 0.5
    done
  done
  # pg_dist_node rewritten locally, in one transaction per node and database, before anything else.
  local cases="" db
  for port in "${ports[@]}"; do cases+=" WHEN $port THEN ${to[$port]}"; done
  local olds
  olds="$(IFS=,; echo "${ports[*]}")"
  for port in "${ports[@]}"; do
    for db in $(psql_at "$top/$port" "${to[$port]}" postgres -c "SELECT datname FROM pg_database WHERE datallowconn AND datname NOT IN ('postgres', 'template1')"); do
      psql_at "$top/$port" "${to[$port]}" "$db" -c "SELECT 1 FROM pg_extension WHERE extname = 'citus'" | grep -q 1 || continue
      psql_at "$top/$port" "${to[$port]}" "$db" -c "UPDATE pg_dist_node SET nodeport = CASE nodeport$cases END WHERE nodename IN ('127.0.0.1', 'localhost') AND nodeport IN ($olds)" >/dev/null
      local live
      live="$(psql_at "$top/$port" "${to[$port]}" "$db" -c "SELECT count(*) FROM pg_dist_node WHERE nodeport IN ($olds)")"
      [ "$live" = "0" ] || die "node :${to[$port]} database $db still names a live node; the guard stays on (copies in $top)"
    done
  done
  for port in "${ports[@]}"; do
    sed -i "/$GUARD_MARK/d" "$top/$port/postgresql.conf"
    psql_at "$top/$port" "${to[$port]}" postgres -c "SELECT pg_reload_conf()" >/dev/null
  done
  local recovered
  recovered="$(psql_at "$top/$CITUS_PORT" "${to[$CITUS_PORT]}" "$DB_NAME" -c 'SELECT recover_prepared_transactions()')"
  sed -E "s#@127\.0\.0\.1:$CITUS_PORT/#@127.0.0.1:${to[$CITUS_PORT]}/#; s#^PGPORT=.*#PGPORT=${to[$CITUS_PORT]}#" "$ENV_FILE" \
    | grep -v '^CITUS_ADMIN_DATABASE_URL=' >"$top/env"
  chmod 600 "$top/env"
  say "cluster restored to $name in $((SECONDS - started)) s: coordinator 127.0.0.1:${to[$CITUS_PORT]}, nodes $(for p in "${ports[@]}"; do printf '%s ' "${to[$p]}"; done)(2PC recovered: $recovered)"
  say "use it with: ENV_FILE=${top#"$ROOT"/}/env .venv/bin/python manage.py <command>; remove it with: make citus-pitr-drop NAME=$name"
  echo "COORDINATOR_PORT=${to[$CITUS_PORT]}"
  echo "PITR_ENV_FILE=$top/env"
}

cmd_drop() {
  local name="${NAME:-${1:-}}"
  valid_name "$name" || refuse "give NAME=<restore point> of the copy to remove"
  local top="$COPIES/citus-$name" dir
  [ -d "$top" ] || refuse "no restored cluster at ${top#"$ROOT"/}"
  for dir in "$top"/*/; do
    [ -f "$dir/PG_VERSION" ] && running "$dir" && as_pg "$(bindir)/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null
  done
  rm -rf "$top"
  say "restored cluster $name stopped and removed"
}

case "${1:-}" in
  setup) cmd_setup ;;
  backup) cmd_backup "${2:-${TYPE:-incr}}" ;;
  point) cmd_point "${2:-${NAME:-}}" ;;
  points) cmd_points ;;
  restore) cmd_restore "${2:-}" ;;
  drop) cmd_drop "${2:-}" ;;
  *) echo "usage: scripts/citus-pitr.sh setup|backup [TYPE]|point [NAME]|points|restore NAME|drop NAME" >&2; exit 2 ;;
esac
