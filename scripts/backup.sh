#!/usr/bin/env bash
# make backup [DB=name] [FILE=path]: tenants/catalog/backups.py does the work (see there).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python manage.py backup_database ${DB:+--db-name "$DB"} ${FILE:+--file "$FILE"}
