#!/usr/bin/env bash
# make restore FILE=backups/x.dump [DB=name]: restore a backup into a NEW database
# (default alphapulse_restored_<time>) and check its row counts per table and
# tenant against those taken at backup time. Exit 1 on any difference.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-env.sh

file="${FILE:?usage: make restore FILE=backups/<name>.dump [DB=<new database>]}"
[ -f "$file" ] || { echo "[restore] no such file: $file" >&2; exit 2; }
db="${DB:-alphapulse_restored_$(date -u +%Y%m%dT%H%M%SZ | tr 'A-Z' 'a-z')}"

echo "[restore] creating database $db"
# psql quotes the name (:"db"); variables are interpolated only in script input.
echo 'CREATE DATABASE :"db" OWNER alphapulse_owner' | PGPASSWORD="$OWNER_DB_PASSWORD" "$(pg_bin)/psql" -X -q \
  -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U alphapulse_owner -d postgres -v db="$db"
echo "[restore] pg_restore $file -> $db"
# --enable-row-security: the data goes in through the policies, as the owner
# holding the bypass; the extension (owned by the superuser) already exists.
PGPASSWORD="$OWNER_DB_PASSWORD" "$(pg_bin)/pg_restore" -h 127.0.0.1 -p "$PGPORT" -U alphapulse_owner \
  --enable-row-security --no-owner --role=alphapulse_owner --exit-on-error \
  --use-list=<("$(pg_bin)/pg_restore" --list "$file" | grep -v -E 'EXTENSION|COMMENT - EXTENSION') \
  -d "$db" "$file"

if [ -f "$file.counts" ]; then
  if diff <(with_db "$db" .venv/bin/python manage.py tenant_row_counts) "$file.counts" >/dev/null; then
    echo "[restore] row counts match the backup ($(wc -l <"$file.counts") table/tenant pairs)"
  else
    echo "[restore] ROW COUNTS DIFFER from the backup:" >&2
    diff <(with_db "$db" .venv/bin/python manage.py tenant_row_counts) "$file.counts" >&2 || true
    exit 1
  fi
else
  echo "[restore] warning: no $file.counts beside the dump; counts not checked" >&2
fi
echo "[restore] done: database $db. Point DATABASE_URL/MIGRATION_DATABASE_URL at it, or rename it."
