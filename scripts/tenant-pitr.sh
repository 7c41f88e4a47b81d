#!/usr/bin/env bash
# One tenant back to a point in time, every other tenant untouched:
#   SLUG=<slug> AT="<time with zone>" | BEFORE_XID=<xid> [MODE=merge|replace] [TABLES="trades orders"]
#   [REASON=...] scripts/tenant-pitr.sh            (make tenant-pitr SLUG=... AT=...)
# 1. a PITR copy of the whole database on a free port (scripts/pitr.sh restore);
# 2. export_tenant SLUG from the copy into backups/tenant-pitr/;
# 3. restore_tenant SLUG --from that export into the live database (suspended meanwhile, audited);
# 4. the copy stopped and removed (also on failure). The export stays, for the record.
# Exit codes: restore_tenant's (0 restored, 1 failed and rolled back, 2 refused) or pitr.sh's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
say() { printf '\033[1m[tenant-pitr]\033[0m %s\n' "$*" >&2; }
refuse() { printf '[tenant-pitr] refused: %s\n' "$*" >&2; exit 2; }

SLUG="${SLUG:-}"
MODE="${MODE:-merge}"
[ -n "$SLUG" ] || refuse 'give SLUG=<tenant slug> and AT="<time with zone>" or BEFORE_XID=<xid>'
[ -n "${AT:-}${BEFORE_XID:-}" ] || refuse 'give AT="<time with zone>" or BEFORE_XID=<xid>'
target="${AT:+AT=$AT}${BEFORE_XID:+BEFORE_XID=$BEFORE_XID}"
# Refusals that need no copy first (unknown or platform tenant, bad mode) cost nothing.
"$PY" manage.py restore_tenant "$SLUG" --from /nonexistent --mode "$MODE" >/dev/null 2>"${TMPDIR:-/tmp}/tenant-pitr.$$" || {
  grep -q 'No verified export' "${TMPDIR:-/tmp}/tenant-pitr.$$" || { cat "${TMPDIR:-/tmp}/tenant-pitr.$$" >&2; rm -f "${TMPDIR:-/tmp}/tenant-pitr.$$"; exit 2; }
}
rm -f "${TMPDIR:-/tmp}/tenant-pitr.$$"

started=$SECONDS
out="$("$ROOT/scripts/pitr.sh" restore)"
port="$(sed -n 's/^PITR_PORT=//p' <<<"$out")"
copy_env="$(sed -n 's/^PITR_ENV_FILE=//p' <<<"$out")"
[ -n "$port" ] || { echo "$out" >&2; exit 1; }
trap '"$ROOT/scripts/pitr.sh" drop "$port" >/dev/null 2>&1 || true' EXIT
restored=$SECONDS

export_dir="$ROOT/backups/tenant-pitr/$SLUG-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$(dirname "$export_dir")"
say "exporting '$SLUG' from the copy on :$port"
(cd "$ROOT" && env -u DATABASE_URL -u MIGRATION_DATABASE_URL -u PGPORT ENV_FILE="$copy_env" \
  "$PY" manage.py export_tenant "$SLUG" --output "$export_dir" --reason "tenant-pitr $target")
exported=$SECONDS

say "restoring '$SLUG' into the live database ($MODE${TABLES:+, tables: $TABLES})"
# shellcheck disable=SC2086 # TABLES is a list of names
(cd "$ROOT" && "$PY" manage.py restore_tenant "$SLUG" --from "$export_dir" --mode "$MODE" \
  ${TABLES:+--tables $TABLES} --provenance "pitr $target (copy on :$port)" \
  --reason "${REASON:-tenant-pitr $target}" --yes)
say "done in $((SECONDS - started)) s (copy $((restored - started)) s, export $((exported - restored)) s, restore $((SECONDS - exported)) s); export kept in ${export_dir#"$ROOT"/}"
