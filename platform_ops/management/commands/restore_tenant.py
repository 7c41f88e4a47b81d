"""`restore_tenant <slug> --from EXPORT [--mode merge|replace] [--tables ...] [--with-users] --yes`:
bring one tenant's rows back into this database from a verified export; see
platform_ops/tenant_restore.py. Without --yes it prints what it would do and writes nothing.

Exit codes: 0 restored; 1 the restore failed and rolled back (the tenant stays suspended);
2 refused, nothing written (unknown tenant, the platform tenant, an export that does not verify,
of another tenant or schema version, an unknown table, no --yes)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from platform_ops.tenant_restore import (
    MERGE,
    MODES,
    REPLACE,
    USERS,
    RestoreFailed,
    RestoreRefused,
    iter_tables,
    plan,
    restore_tenant,
)
from tenants import platform_audit as audit
from tenants.management.base import tenant_by_slug


class Command(BaseCommand):
    help = (
        "Restore one tenant's rows from a verified export (merge by default), every other tenant untouched. "
        "Exit status: 0 restored, 1 the restore failed and rolled back (the tenant stays suspended), "
        "2 refused, nothing written (unknown or platform tenant, an export that does not verify, no --yes)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--from", dest="source", required=True, type=Path, help="an export_tenant directory")
        parser.add_argument("--mode", choices=MODES, default=MERGE)
        parser.add_argument("--tables", nargs="+", default=None, help="tenant tables to act on (default: all)")
        parser.add_argument("--with-users", action="store_true", help="replace users too (old password hashes!)")
        parser.add_argument("--reason", default="", help="why (kept in the audit trail)")
        parser.add_argument("--provenance", default="", help="where the export came from, e.g. 'pitr AT=...'")
        parser.add_argument("--safety-dir", type=Path, default=None, help="where replace saves what it removes")
        parser.add_argument("--yes", action="store_true", help="do it (without: print the plan only)")

    def handle(self, *args, slug, source, mode, tables, with_users, reason, provenance, safety_dir, yes, **options):
        tenant = tenant_by_slug(slug)
        chosen = list(iter_tables(tables)) or None
        if with_users and mode != REPLACE:
            raise CommandError("--with-users only means something with --mode replace.", returncode=2)
        try:
            manifest, acted_on = plan(tenant, source, mode=mode, tables=chosen)
        except RestoreRefused as exc:
            audit.record(
                "tenant.restore",
                tenant=tenant,
                result="refused",
                reason=reason,
                detail={"source": str(source), "error": str(exc)},
                durable=True,
            )
            raise CommandError(str(exc), returncode=2) from exc
        rows = manifest.rows()
        for table in acted_on:
            how = REPLACE if mode == REPLACE and (table != USERS or with_users) else MERGE
            self.stdout.write(f"  {table:<22} {how:<8} {rows[table]:>9} rows in the export")
        if not yes:
            raise CommandError(
                f"Nothing done: add --yes to restore tenant '{slug}' ({mode}) from {source}.", returncode=2
            )
        try:
            outcome = restore_tenant(
                tenant,
                source,
                mode=mode,
                tables=chosen,
                with_users=with_users,
                provenance=provenance,
                reason=reason,
                safety_dir=safety_dir,
                progress=self._progress,
            )
        except RestoreRefused as exc:  # raced: e.g. the export changed after the plan
            raise CommandError(str(exc), returncode=2) from exc
        except RestoreFailed as exc:
            raise CommandError(str(exc), returncode=1) from exc
        self.stdout.write(
            f"  {'table':<22} {'mode':<8} {'before':>8} {'deleted':>8} {'export':>8} "
            f"{'inserted':>8} {'skipped':>8} {'after':>8}"
        )
        for table, r in outcome.report.items():
            self.stdout.write(
                f"  {table:<22} {r.mode:<8} {r.before:>8} {r.deleted:>8} {r.in_export:>8} "
                f"{r.inserted:>8} {r.skipped:>8} {r.after:>8}"
            )
        if outcome.safety_path:
            self.stdout.write(f"  what replace removed is in {outcome.safety_path} (restore it with --mode merge)")
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored tenant '{slug}' ({mode}): suspended {outcome.suspended_seconds:.2f} s, "
                f"transaction {outcome.transaction_seconds:.2f} s"
            )
        )

    def _progress(self, table: str, rows: int) -> None:
        self.stderr.write(f"  {table}: {rows} rows", ending="\r")
