#!/usr/bin/env bash
# Local Redis for AlphaPulse (cache, rate limits, Celery broker): `scripts/redis.sh up|down|status|cli`.
#
# up: installs redis-server with apt-get when it is missing, writes .redis/redis.conf
# (loopback only, port ${REDIS_PORT:-54379}, a random password from .env,
# append-only persistence in .redis/), starts its own redis-server (never the
# system service; as the OS user `redis` when run as root) and adds REDIS_URL
# to .env. Every step is idempotent: a second run reuses what is there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REDIS_DIR="${ALPHAPULSE_REDIS_DIR:-$ROOT/.redis}"
ENV_FILE="${ALPHAPULSE_ENV_FILE:-$ROOT/.env}"
CONF="$REDIS_DIR/redis.conf"

say() { printf '\033[1m[redis]\033[0m %s\n' "$*"; }
die() { printf '[redis] error: %s\n' "$*" >&2; exit 1; }

env_value() { [ -f "$ENV_FILE" ] && grep -E "^$1=" "$ENV_FILE" | tail -n 1 | cut -d= -f2- || true; }

# The port: the environment, else what .env recorded, else the default.
REDIS_PORT="${REDIS_PORT:-$(env_value REDIS_PORT)}"
REDIS_PORT="${REDIS_PORT:-54379}"

ensure_installed() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
  say "redis-server is not installed; installing it with apt-get"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  # policy-rc.d-free install: the package's own service may start, we never use it.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
  command -v redis-server >/dev/null 2>&1 || die "apt-get finished but redis-server was not found"
}

# As root, run the server as the unprivileged `redis` user (the package creates it).
as_redis() {
  if [ "$(id -u)" -eq 0 ]; then
    id redis >/dev/null 2>&1 || useradd --system --home-dir /var/lib/redis --shell /usr/sbin/nologin redis
    runuser -u redis -- "$@"
  else
    "$@"
  fi
}

write_env() {
  [ -f "$ENV_FILE" ] || die "$ENV_FILE is missing: run scripts/db.sh up first (make db-up)"
  [ -n "$(env_value REDIS_PASSWORD)" ] && return 0
  say "adding REDIS_PASSWORD and REDIS_URL to $(basename "$ENV_FILE")"
  local pw
  pw=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
  cat >>"$ENV_FILE" <<ENV
REDIS_PORT=$REDIS_PORT
REDIS_PASSWORD=$pw
REDIS_URL=redis://:$pw@127.0.0.1:$REDIS_PORT/0
ENV
}

write_conf() {
  mkdir -p "$REDIS_DIR"
  [ "$(id -u)" -eq 0 ] && chown redis: "$REDIS_DIR"
  chmod 700 "$REDIS_DIR"
  local pw
  pw=$(env_value REDIS_PASSWORD)
  umask 077
  cat >"$CONF.new" <<CONF
# Written by scripts/redis.sh from .env; rewritten on every 'up'.
bind 127.0.0.1
protected-mode yes
port $REDIS_PORT
requirepass $pw
dir $REDIS_DIR
pidfile $REDIS_DIR/redis.pid
logfile $REDIS_DIR/redis.log
daemonize yes
# Persistence: the Celery queue and the rate-limit windows survive a restart.
appendonly yes
appendfsync everysec
save 3600 1 300 100
# Never evict: a dropped broker key is a lost task.
maxmemory-policy noeviction
CONF
  mv "$CONF.new" "$CONF"
  [ "$(id -u)" -eq 0 ] && chown redis: "$CONF"
  return 0
}

cli() { REDISCLI_AUTH="$(env_value REDIS_PASSWORD)" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

is_running() { [ "$(cli ping 2>/dev/null)" = "PONG" ]; }

cmd_up() {
  ensure_installed
  write_env
  if is_running; then
    say "running on 127.0.0.1:$REDIS_PORT"
    return 0
  fi
  write_conf
  say "starting redis-server on 127.0.0.1:$REDIS_PORT (data in $REDIS_DIR)"
  as_redis redis-server "$CONF"
  for _ in $(seq 1 50); do
    is_running && { say "ready: redis://127.0.0.1:$REDIS_PORT"; return 0; }
    sleep 0.1
  done
  tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
  die "redis-server did not start (log above)"
}

cmd_down() {
  if is_running; then
    say "stopping redis-server on 127.0.0.1:$REDIS_PORT"
    # SHUTDOWN writes the append-only file before the server exits.
    cli shutdown >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do is_running || return 0; sleep 0.1; done
    die "redis-server on $REDIS_PORT did not stop"
  else
    say "redis-server is not running"
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) is_running && say "running on 127.0.0.1:$REDIS_PORT" || { say "not running"; exit 1; } ;;
  cli) shift; cli "$@" ;;
  *) echo "usage: scripts/redis.sh up|down|status|cli" >&2; exit 2 ;;
esac
