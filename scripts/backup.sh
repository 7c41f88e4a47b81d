#!/usr/bin/env bash
# make backup: pg_dump (custom format) of the database with RLS forced, plus the
# row counts per table and tenant that scripts/restore.sh checks it against.
#
# Under FORCE ROW LEVEL SECURITY a plain dump by the owner stops with "query
# would be affected by row-level security policy"; --enable-row-security as the
# owner (who holds rls_bypass_role) dumps every row. A role the policies filter
# would dump 0 rows silently, so the counts are checked, never assumed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-env.sh

db="${DB:-$(db_name_of "$MIGRATION_DATABASE_URL")}"
mkdir -p backups
stamp=$(date -u +%Y%m%dT%H%M%SZ)
file="${FILE:-backups/${db}-${stamp}.dump}"

echo "[backup] counting rows per table and tenant in $db"
with_db "$db" .venv/bin/python manage.py tenant_row_counts >"$file.counts"
echo "[backup] pg_dump $db -> $file"
PGPASSWORD="$OWNER_DB_PASSWORD" "$(pg_bin)/pg_dump" -h 127.0.0.1 -p "$PGPORT" -U alphapulse_owner \
  --enable-row-security --format=custom --file "$file" "$db"
tables=$("$(pg_bin)/pg_restore" --list "$file" | grep -c "TABLE DATA public" || true)
echo "[backup] done: $file ($(du -h "$file" | cut -f1), $tables tables with data, $(wc -l <"$file.counts") table/tenant counts)"
echo "[backup] restore with: make restore FILE=$file"
