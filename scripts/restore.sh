#!/usr/bin/env bash
# make restore FILE=backups/x.dump [DB=name] [UNCHECKED=1]: restore into a NEW database and
# check its row counts against the backup's (tenants/catalog/backups.py). Exit 1 on any difference.
set -euo pipefail
cd "$(dirname "$0")/.."
file="${FILE:?usage: make restore FILE=backups/<name>.dump [DB=<new database>] [UNCHECKED=1]}"
exec .venv/bin/python manage.py restore_database "$file" ${DB:+--db-name "$DB"} ${UNCHECKED:+--unchecked}
