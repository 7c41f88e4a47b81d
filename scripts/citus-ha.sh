#!/usr/bin/env bash
# A Citus worker that fails over: a synchronous pair under pg_auto_failover, and a follower.
#   scripts/citus-ha.sh up       a pg_auto_failover monitor (:CITUS_PORT+10), worker a (:+11, a new Citus
#                                worker of the running cluster) and its synchronous standby b (:+12), tuned
#                                timeouts, the follower that runs citus_update_node after a failover;
#                                then SLUGS (default "globex") moved onto that worker. Idempotent.
#                                HA_WORKERS=all: every worker `citus.sh up` made (:+1, :+2, ...) becomes a pair
#                                too, each in a formation of its own, its standby on its port + 20, a follower each.
#   scripts/citus-ha.sh status   the monitor's view and the follower's log tail
#   scripts/citus-ha.sh down     stops the follower, both keepers and the monitor (the worker stays
#                                registered: move its tenants off first, or make citus-down)
# Everything in .citus-ha/ (0700); pg_autoctl's pid files in .citus-ha/tmp. pg_auto_failover comes from the
# Debian packages, installed when missing with PostgreSQL pinned (scripts/apt-common.sh).
#
# Without HA_WORKERS=all this protects ONE worker (the new one) and the others stay plain.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_FILE="${ALPHAPULSE_CITUS_ENV_FILE:-$ROOT/.env.citus}"
CITUS_PORT="${CITUS_PORT:-$( (grep -E '^PGPORT=' "$ENV_FILE" 2>/dev/null || echo PGPORT=54340) | tail -n 1 | cut -d= -f2)}"
HA="${ALPHAPULSE_CITUS_HA_DIR:-$ROOT/.citus-ha}"
MONITOR_PORT=$((CITUS_PORT + 10))
A_PORT=$((CITUS_PORT + 11))
B_PORT=$((CITUS_PORT + 12))
CITUS_WORKERS="${CITUS_WORKERS:-2}" # the workers `citus.sh up` made: CITUS_PORT+1 ...
A_DIR="$ROOT/.citus/worker-$A_PORT" # a is a Citus worker like any other (scripts/citus.sh add-worker)
B_DIR="$HA/b"
MONITOR_URL="postgres://autoctl_node@127.0.0.1:$MONITOR_PORT/pg_auto_failover?sslmode=disable"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

say() { printf '\033[1m[citus-ha]\033[0m %s\n' "$*" >&2; }
die() { printf '[citus-ha] error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/db-common.sh
source "$ROOT/scripts/db-common.sh"
# shellcheck source=scripts/apt-common.sh
source "$ROOT/scripts/apt-common.sh"

asp() { as_pg env XDG_CONFIG_HOME="$HA/config" XDG_DATA_HOME="$HA/data" TMPDIR="$HA/tmp" PATH="$PGBIN:$PATH" "$@"; }
env_value() { grep -E "^$1=" "$ENV_FILE" | tail -n 1 | cut -d= -f2-; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
keeper() { # keeper NAME PGDATA: pg_autoctl run in the background, pid in $HA/NAME.pid
  alive "$HA/$1.pid" && return 0
  asp nohup pg_autoctl run --pgdata "$2" >>"$HA/$1.log" 2>&1 &
  echo $! >"$HA/$1.pid"
}
monitor_sql() { as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$MONITOR_PORT" -d pg_auto_failover "$@"; }
state_of() { asp pg_autoctl show state --pgdata "$HA/monitor" --formation "${1:-default}" --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
print(" ".join("%s:%s" % (n["nodename"], n["current_group_state"]) for n in json.load(sys.stdin)))' 2>/dev/null || true; }

# protect_pair FORMATION NAME_A PORT_A DIR_A NAME_B PORT_B DIR_B: the running Citus worker in DIR_A becomes
# the primary of a synchronous pg_auto_failover pair in its own formation, with a standby made by
# pg_basebackup in DIR_B. Idempotent.
protect_pair() {
  local formation="$1" name_a="$2" port_a="$3" dir_a="$4" name_b="$5" port_b="$6" dir_b="$7" i
  if [ "$formation" != default ] && ! monitor_sql -c "SELECT 1 FROM pgautofailover.formation WHERE formationid = '$formation'" | grep -q 1; then
    asp pg_autoctl create formation --monitor "$MONITOR_URL" --formation "$formation" --kind pgsql --dbname postgres \
      >>"$HA/monitor.log" 2>&1 || die "formation $formation: create failed ($HA/monitor.log)"
  fi
  if [ ! -f "$dir_a/pg_autoctl.cfg" ] && ! grep -q pgautofailover_monitor "$dir_a/pg_hba.conf"; then
    as_pg "$PGBIN/pg_ctl" -D "$dir_a" -m fast -w stop >/dev/null 2>&1 || true
    # pg_auto_failover's own roles, first in pg_hba.conf (loopback only); everyone else keeps scram.
    local hba
    hba="$(cat "$dir_a/pg_hba.conf")"
    printf '%s\n%s\n%s\n%s\n' "host all pgautofailover_monitor 127.0.0.1/32 trust" \
      "host replication pgautofailover_replicator 127.0.0.1/32 trust" \
      "host all pgautofailover_replicator 127.0.0.1/32 trust" "$hba" >"$dir_a/pg_hba.conf"
  fi
  if ! asp pg_autoctl show state --pgdata "$HA/monitor" --formation "$formation" 2>/dev/null | grep -q " $name_a "; then
    as_pg "$PGBIN/pg_ctl" -D "$dir_a" -m fast -w stop >/dev/null 2>&1 || true
    asp pg_autoctl create postgres --pgdata "$dir_a" --pgport "$port_a" --pghost "$dir_a" --hostname 127.0.0.1 \
      --name "$name_a" --formation "$formation" --monitor "$MONITOR_URL" --no-ssl --skip-pg-hba --pgctl "$PGBIN/pg_ctl" \
      >>"$HA/$name_a.log" 2>&1 || die "pg_autoctl create ($name_a) failed ($HA/$name_a.log)"
  fi
  keeper "$name_a" "$dir_a"
  if [ ! -f "$dir_b/PG_VERSION" ]; then
    say "$formation: the standby of :$port_a on :$port_b (pg_basebackup)"
    asp pg_autoctl create postgres --pgdata "$dir_b" --pgport "$port_b" --pghost "$dir_a" --hostname 127.0.0.1 \
      --name "$name_b" --formation "$formation" --monitor "$MONITOR_URL" --no-ssl --skip-pg-hba --pgctl "$PGBIN/pg_ctl" \
      >>"$HA/$name_b.log" 2>&1 || die "pg_autoctl create ($name_b) failed ($HA/$name_b.log)"
  fi
  keeper "$name_b" "$dir_b"
  local node
  for node in "$dir_a" "$dir_b"; do
    asp pg_autoctl config set --pgdata "$node" timeout.network_partition_timeout 5 >/dev/null 2>&1 || true
  done
  for i in $(seq 1 240); do
    case "$(state_of "$formation")" in *primary*secondary* | *secondary*primary*) break ;; esac
    sleep 1
  done
  say "$formation pair: $(state_of "$formation")"
}

cmd_up() {
  command -v pg_autoctl >/dev/null 2>&1 || apt_install_pinned "postgresql-$(basename "$(dirname "$PGBIN")")-auto-failover" pg-auto-failover-cli
  mkdir -p "$HA"/{config,data,tmp}
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$HA"
  chmod 700 "$HA"
  if [ ! -f "$HA/monitor/PG_VERSION" ]; then
    say "creating the monitor on :$MONITOR_PORT"
    asp pg_autoctl create monitor --pgdata "$HA/monitor" --pgport "$MONITOR_PORT" --hostname 127.0.0.1 \
      --auth trust --no-ssl --pgctl "$PGBIN/pg_ctl" >>"$HA/monitor.log" 2>&1 || die "monitor create failed ($HA/monitor.log)"
  fi
  keeper monitor "$HA/monitor"
  local i
  for i in $(seq 1 60); do monitor_sql -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
  # Measured: defaults take ~50 s to fail over (20 s unhealthy + 30 s waiting for the dead primary to
  # demote); these take ~13 s. primary_demote_timeout stays above the keepers' network_partition_timeout,
  # so an isolated old primary demotes itself before the standby takes writes.
  monitor_sql >/dev/null <<'SQL'
ALTER SYSTEM SET pgautofailover.health_check_period = 1000;
ALTER SYSTEM SET pgautofailover.health_check_timeout = 1000;
ALTER SYSTEM SET pgautofailover.health_check_retry_delay = 500;
ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1;
ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = 4000;
ALTER SYSTEM SET pgautofailover.primary_demote_timeout = 8000;
SELECT pg_reload_conf();
SQL
  if [ ! -f "$A_DIR/PG_VERSION" ]; then
    say "worker a: a new Citus worker on :$A_PORT"
    "$ROOT/scripts/citus.sh" add-worker "$A_PORT" alphapulse >/dev/null
  fi
  protect_pair default a "$A_PORT" "$A_DIR" b "$B_PORT" "$B_DIR"
  follower default follower "$A_PORT"
  if [ "${HA_WORKERS:-}" = all ]; then
    # Every worker `citus.sh up` made becomes a pair of its own (a formation each), standby on port+20.
    local port
    for port in $(seq $((CITUS_PORT + 1)) $((CITUS_PORT + CITUS_WORKERS))); do
      [ -f "$ROOT/.citus/worker-$port/PG_VERSION" ] || die "no worker on :$port to protect (make citus-up first)"
      protect_pair "w$port" "w${port}a" "$port" "$ROOT/.citus/worker-$port" "w${port}b" $((port + 20)) "$HA/w${port}b"
      follower "w$port" "follower-w$port" "$port"
    done
  fi
  local admin
  admin="$(env_value CITUS_ADMIN_DATABASE_URL)"
  "$ROOT/.venv/bin/python" - "$admin" <<'PY'
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as c:
    # Moving a tenant onto a new worker needs the reference tables there first.
    c.execute("SELECT replicate_reference_tables('block_writes')")
PY
  local slug current
  for slug in ${SLUGS:-globex}; do
    current="$("$ROOT/.venv/bin/python" - "$admin" "$slug" <<'PY'
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as c:
    row = c.execute(
        "SELECT n.nodeport FROM tenants t, pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
        "WHERE t.slug = %s AND p.shardid = get_shard_id_for_distribution_column('trades', t.id)", [sys.argv[2]]
    ).fetchone()
    print(row[0] if row else "")
PY
)"
    if [ "$current" != "$A_PORT" ] && [ "$current" != "$B_PORT" ]; then
      (cd "$ROOT" && ENV_FILE=.env.citus .venv/bin/python manage.py citus_move_tenant "$slug" --to "127.0.0.1:$A_PORT" >/dev/null) \
        || die "moving $slug onto the protected worker failed"
      say "tenant $slug moved onto the protected worker"
    fi
  done
  say "ready: monitor :$MONITOR_PORT, worker a :$A_PORT + standby b :$B_PORT (synchronous), follower running"
}

# follower FORMATION PIDNAME PORT: the process that runs citus_update_node when FORMATION's primary
# changes, for the pg_dist_node row that named :PORT when it started.
follower() {
  alive "$HA/$2.pid" && return 0
  nohup "$ROOT/.venv/bin/python" "$ROOT/scripts/citus_ha_follower.py" --monitor "$MONITOR_URL" --formation "$1" \
    --coordinator "$(env_value CITUS_ADMIN_DATABASE_URL)" --node "127.0.0.1:$3" >>"$HA/$2.log" 2>&1 &
  echo $! >"$HA/$2.pid"
}

cmd_status() {
  local formation
  for formation in $(monitor_sql -c "SELECT formationid FROM pgautofailover.formation WHERE formationid <> 'monitor' ORDER BY 1"); do
    echo "formation $formation:"
    asp pg_autoctl show state --pgdata "$HA/monitor" --formation "$formation"
  done
  tail -q -n 3 "$HA"/follower*.log 2>/dev/null || true
}

cmd_down() {
  local name names
  # Followers first, then standbys before primaries (no promotion on the way down), the monitor last.
  names="$(cd "$HA" && ls follower*.pid 2>/dev/null | sed 's/\.pid$//'; echo b; ls w*b.pid 2>/dev/null | sed 's/\.pid$//'; echo a; ls w*a.pid 2>/dev/null | sed 's/\.pid$//')"
  for name in $names monitor; do
    if alive "$HA/$name.pid"; then
      # The pid is runuser's (as root) or pg_autoctl's: signal its children too, pg_autoctl stops its PostgreSQL.
      kill $(ps -o pid= --ppid "$(cat "$HA/$name.pid")") "$(cat "$HA/$name.pid")" 2>/dev/null || true
      for _ in $(seq 1 30); do alive "$HA/$name.pid" || break; sleep 0.5; done
    fi
    rm -f "$HA/$name.pid"
  done
  # A node left with synchronous_standby_names and no keeper would hang every commit once started
  # alone (citus.sh up): the setting goes with the pair, and citus-ha-up sets it again.
  local dir
  for dir in "$ROOT"/.citus/worker-* "$HA"/b "$HA"/w*b; do
    [ -f "$dir/postgresql.auto.conf" ] || continue
    sed -i '/^synchronous_standby_names/d' "$dir/postgresql.auto.conf"
  done
  say "follower, keepers and monitor stopped"
}

case "${1:-}" in
  up) cmd_up ;;
  status) cmd_status ;;
  down) cmd_down ;;
  *) echo "usage: scripts/citus-ha.sh up|status|down" >&2; exit 2 ;;
esac
