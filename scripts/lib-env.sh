# Shared by scripts/backup.sh and scripts/restore.sh: .env, the PostgreSQL
# binaries, and running manage.py against another database of the cluster.
[ -f .env ] || { echo "no .env: run 'make setup' first" >&2; exit 2; }
set -a; source .env; set +a
PGPORT="${PGPORT:-54329}"

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# postgres://user:pw@host:port/name -> name
db_name_of() { echo "${1##*/}"; }

# with_db NAME cmd...: run cmd with both database URLs pointing at NAME.
with_db() {
  local name="$1"; shift
  DATABASE_URL="${DATABASE_URL%/*}/$name" MIGRATION_DATABASE_URL="${MIGRATION_DATABASE_URL%/*}/$name" "$@"
}
