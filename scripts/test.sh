#!/usr/bin/env bash
# make test: lint, the migration check, then pytest against the local PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"
ruff check .
ruff format --check .

echo "== mypy"
mypy alphapulse tenants trading jobs

echo "== missing migrations"
python manage.py makemigrations --check --dry-run

echo "== runtime role cannot get past RLS"
python manage.py check --database default --fail-level ERROR

# The admin's static files, as gunicorn serves them (whitenoise).
python manage.py collectstatic --noinput -v 0

echo "== browser test dependencies"
scripts/browser-deps.sh

echo "== pytest"
python -m pytest "$@"
