"""`import_tenant PATH`: load a tenant export into this database, ids preserved, all or nothing.
Refuses (exit 2, nothing written) a damaged export, a schema-version mismatch or an existing
tenant; see platform_ops/tenant_export.py. Recorded in the audit trail."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from platform_ops.tenant_export import ExportError, import_tenant, read_manifest
from tenants import platform_audit as audit


class Command(BaseCommand):
    help = "Import a tenant export (made by export_tenant) into this database, in one transaction."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--reason", default="", help="why (kept in the audit trail)")

    def handle(self, *args, path: Path, reason: str, **options):
        try:
            manifest = import_tenant(path, progress=self._progress)
        except ExportError as exc:
            tenant_id, tenant_slug = None, ""
            try:
                named = read_manifest(path)
                tenant_id, tenant_slug = named.tenant_id, named.slug
            except ExportError:
                pass  # not even a readable manifest: the entry names the path only
            audit.record(
                "tenant.import",
                tenant_id=tenant_id,
                tenant_slug=tenant_slug,
                result="refused",
                reason=reason,
                detail={"path": str(path), "error": str(exc)},
            )
            raise CommandError(str(exc), returncode=2) from exc
        audit.record(
            "tenant.import",
            tenant_id=manifest.tenant_id,
            tenant_slug=manifest.slug,
            reason=reason,
            detail={"path": str(path.resolve()), "rows": manifest.rows(), "manifest_sha256": manifest.sha256()},
        )
        total = sum(manifest.rows().values())
        self.stdout.write(self.style.SUCCESS(f"Imported tenant '{manifest.slug}' ({manifest.tenant_id}): {total} rows"))

    def _progress(self, table: str, rows: int) -> None:
        self.stderr.write(f"  {table}: {rows} rows", ending="\r")
