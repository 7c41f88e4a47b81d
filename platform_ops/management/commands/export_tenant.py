"""`export_tenant <slug> --output PATH`: every row of one tenant as a directory of NDJSON files
with a manifest (row counts, SHA-256, schema version); see platform_ops/tenant_export.py.
Recorded in the audit trail. Exit 2 on an unknown slug or an existing PATH."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from platform_ops.tenant_export import ExportError, export_tenant
from tenants import platform_audit as audit
from tenants.management.base import tenant_by_slug


class Command(BaseCommand):
    help = "Export one tenant's data (every tenant table) to a new directory of NDJSON files and a manifest."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--output", required=True, type=Path, help="a directory that does not exist yet")
        parser.add_argument("--reason", default="", help="why (kept in the audit trail)")

    def handle(self, *args, slug: str, output: Path, reason: str, **options):
        tenant = tenant_by_slug(slug)
        try:
            manifest = export_tenant(tenant, output, progress=self._progress)
        except ExportError as exc:
            audit.record("tenant.export", tenant=tenant, result="refused", reason=reason, detail={"error": str(exc)})
            raise CommandError(str(exc), returncode=2) from exc
        audit.record(
            "tenant.export",
            tenant=tenant,
            reason=reason,
            detail={"path": str(output.resolve()), "rows": manifest.rows(), "manifest_sha256": manifest.sha256()},
        )
        total = sum(manifest.rows().values())
        self.stdout.write(self.style.SUCCESS(f"Exported tenant '{slug}': {total} rows to {output}"))

    def _progress(self, table: str, rows: int) -> None:
        self.stderr.write(f"  {table}: {rows} rows", ending="\r")
