"""One tenant's rows back into the live database from a verified export, every other tenant untouched.

`restore_tenant()` is the one implementation (`manage.py restore_tenant`, `make tenant-pitr`).
The export usually comes from a point-in-time copy of the whole database
(`make pitr-restore`, then `export_tenant` on the copy); any verified export of
this same tenant at this schema version will do. In order:

1. refuse, before writing anything: an export that does not verify, an export of
   another tenant (id or slug), another schema version, the platform tenant, a
   table that is not a tenant table;
2. suspend the tenant (its next API request is a 403; jobs skip it) and record
   `tenant.restore.started` with the source's provenance (path, manifest SHA-256,
   when it was exported, what the copy was restored to);
3. one transaction on the owner connection: lock the tenant row FOR UPDATE (waits
   for the tenant's in-flight writes, which hold a key-share lock on it), then per
   table, children first for deletes and parents first for inserts:
   - merge (default): INSERT ... ON CONFLICT DO NOTHING: missing rows come back,
     rows present live keep their live version, natural-key collisions are skipped
     and counted;
   - replace: DELETE the tenant's rows ... RETURNING them into a safety export (the
     same format, restorable with --mode merge), then INSERT the export's rows;
   users are merged, never replaced, unless `with_users` (old password hashes and
   deactivated accounts would come back, and old tokens would verify again);
   then the foreign keys checked and every count compared (merge: live = before +
   inserted; replace: live = the export's) before COMMIT: a concurrent write or a
   bad row fails the whole restore, nothing half-done;
4. put the tenant's status back and record `tenant.restore.finished` with the
   per-table figures; on any failure `tenant.restore.failed` (durable) and the
   tenant stays suspended for the operator to look at.
Only the tenant's own rows are locked or written: other tenants' rows keep
their id and xmin (tests/ops/test_tenant_restore.py compares them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, models, transaction
from psycopg import sql
from psycopg.types.json import Jsonb

from platform_ops.tenant_export import (
    FORMAT,
    FORMAT_VERSION,
    INSERT_BATCH,
    MANIFEST,
    ExportError,
    Manifest,
    _rows,
    _schema_differences,
    columns_of,
    encode_row,
    schema_version,
    verify_export,
)
from tenants import platform_audit as audit
from tenants.constants import OWNER_DATABASE
from tenants.models import Tenant
from tenants.registry import tenant_models

MERGE, REPLACE = "merge", "replace"
MODES = (MERGE, REPLACE)
USERS = "users"
STARTED, FINISHED, FAILED = "tenant.restore.started", "tenant.restore.finished", "tenant.restore.failed"

Progress = Callable[[str, int], None]


class RestoreRefused(Exception):
    """The restore would be wrong or unsafe; nothing was written."""


class RestoreFailed(Exception):
    """The restore transaction rolled back; the tenant stays suspended."""


@dataclass
class TableReport:
    before: int = 0
    deleted: int = 0
    in_export: int = 0
    inserted: int = 0
    skipped: int = 0
    after: int = 0
    mode: str = MERGE


@dataclass
class Restore:
    slug: str
    mode: str
    tables: list[str]
    safety_path: Path | None
    report: dict[str, TableReport] = field(default_factory=dict)
    suspended_seconds: float = 0.0
    transaction_seconds: float = 0.0


def _models_by_table() -> dict[str, type[models.Model]]:
    return {m._meta.db_table: m for m in tenant_models()}


def plan(
    tenant: Tenant, source: Path, *, mode: str = MERGE, tables: list[str] | None = None, alias: str = OWNER_DATABASE
) -> tuple[Manifest, list[str]]:
    """The verified export and the tables to act on (parents first); RestoreRefused otherwise."""
    if mode not in MODES:
        raise RestoreRefused(f"--mode must be one of {', '.join(MODES)}, not '{mode}'.")
    if tenant.slug == settings.PLATFORM_TENANT_SLUG:
        raise RestoreRefused("The platform tenant is never restored this way: its users are the staff.")
    try:
        manifest = verify_export(source)
    except ExportError as exc:
        raise RestoreRefused(f"No verified export at {source}: {exc}") from exc
    if manifest.tenant_id != tenant.pk or manifest.slug != tenant.slug:
        raise RestoreRefused(
            f"{source} is an export of tenant '{manifest.slug}' ({manifest.tenant_id}), "
            f"not of '{tenant.slug}' ({tenant.pk})."
        )
    differences = _schema_differences(manifest.data["schema_version"], schema_version(alias))
    if differences:
        raise RestoreRefused(
            "The export was made at another schema version: " + "; ".join(differences) + ". Nothing was restored."
        )
    known = _models_by_table()
    exported = {entry["table"]: entry for entry in manifest.files}
    chosen = list(tables) if tables else [t for t in known if t in exported]
    unknown = [t for t in chosen if t not in known]
    if unknown:
        raise RestoreRefused(f"Not tenant tables: {', '.join(unknown)}. Tenant tables: {', '.join(known)}.")
    missing = [t for t in chosen if t not in exported]
    if missing:
        raise RestoreRefused(f"The export has no {', '.join(missing)}.")
    for table in chosen:
        if exported[table]["columns"] != [f.column for f in columns_of(known[table])]:
            raise RestoreRefused(f"{table}: the export's columns differ from this database's.")
    return manifest, [t for t in known if t in chosen]  # parents first, whatever order was asked


def restore_tenant(
    tenant: Tenant,
    source: Path,
    *,
    mode: str = MERGE,
    tables: list[str] | None = None,
    with_users: bool = False,
    provenance: str = "",
    reason: str = "",
    safety_dir: Path | None = None,
    progress: Progress | None = None,
    alias: str = OWNER_DATABASE,
) -> Restore:
    manifest, chosen = plan(tenant, source, mode=mode, tables=tables, alias=alias)
    modes = {t: (REPLACE if mode == REPLACE and (t != USERS or with_users) else MERGE) for t in chosen}
    safety = None
    if REPLACE in modes.values():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        safety = Path(safety_dir or Path(settings.BASE_DIR) / "backups" / "restore-safety") / f"{tenant.slug}-{stamp}"
    outcome = Restore(tenant.slug, mode, chosen, safety)
    detail: dict[str, Any] = {
        "source": str(Path(source).resolve()),
        "manifest_sha256": manifest.sha256(),
        "exported_at": manifest.data["exported_at"],
        "provenance": provenance,
        "mode": mode,
        "tables": {t: modes[t] for t in chosen},
        "with_users": with_users,
        "safety_export": str(safety) if safety else None,
    }
    previous = tenant.status
    suspended_at = time.monotonic()
    if previous != Tenant.Status.SUSPENDED:
        Tenant.objects.using(alias).filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
        audit.record(
            "tenant.status", tenant=tenant, reason="restore", detail={"from": previous, "to": "suspended"}, alias=alias
        )
    audit.record(STARTED, tenant=tenant, reason=reason, detail=detail, alias=alias)
    try:
        began = time.monotonic()
        _restore_transaction(tenant, manifest, modes, safety, outcome, progress, alias)
        outcome.transaction_seconds = time.monotonic() - began
    except Exception as exc:
        audit.record(
            FAILED,
            tenant=tenant,
            result="failed",
            reason=reason,
            detail={**detail, "error": f"{type(exc).__name__}: {exc}"},
            alias=alias,
            durable=True,
        )
        raise RestoreFailed(
            f"The restore of '{tenant.slug}' rolled back ({exc}). Nothing changed; the tenant stays suspended: "
            f"check, then manage.py set_tenant_status {tenant.slug} {previous}."
        ) from exc
    if previous != Tenant.Status.SUSPENDED:
        Tenant.objects.using(alias).filter(pk=tenant.pk).update(status=previous)
        audit.record(
            "tenant.status", tenant=tenant, reason="restore", detail={"from": "suspended", "to": previous}, alias=alias
        )
    outcome.suspended_seconds = time.monotonic() - suspended_at
    audit.record(
        FINISHED,
        tenant=tenant,
        reason=reason,
        detail={
            **detail,
            "report": {t: vars(r) for t, r in outcome.report.items()},
            "suspended_seconds": round(outcome.suspended_seconds, 3),
            "transaction_seconds": round(outcome.transaction_seconds, 3),
        },
        alias=alias,
    )
    return outcome


def _count(cursor, table: str, tenant: Tenant) -> int:
    statement = sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(sql.Identifier(table))
    cursor.execute(statement.as_string(cursor.connection), [tenant.pk])
    return int(cursor.fetchone()[0])


def _restore_transaction(
    tenant: Tenant,
    manifest: Manifest,
    modes: dict[str, str],
    safety: Path | None,
    outcome: Restore,
    progress: Progress | None,
    alias: str,
) -> None:
    by_table = _models_by_table()
    exported = {entry["table"]: entry for entry in manifest.files}
    writer = _SafetyExport(safety, tenant, alias) if safety else None
    try:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{settings.MIGRATION_LOCK_TIMEOUT_MS}ms"])
            # Waits for the tenant's in-flight writes (their foreign key holds a key-share lock on this row)
            # and keeps new ones out until COMMIT; other tenants' rows are never locked.
            cursor.execute("SELECT id FROM tenants WHERE id = %s FOR UPDATE", [tenant.pk])
            for table in modes:
                outcome.report[table] = TableReport(before=_count(cursor, table, tenant), mode=modes[table])
            for table in reversed(list(modes)):  # children first
                if modes[table] == REPLACE:
                    fields = columns_of(by_table[table])
                    deleted = _delete_returning(cursor, table, fields, tenant)
                    outcome.report[table].deleted = len(deleted)
                    if writer:
                        writer.write(table, fields, deleted)
            for table in modes:  # parents first
                report = outcome.report[table]
                report.in_export, report.inserted = _insert_rows(
                    cursor,
                    manifest,
                    exported[table],
                    by_table[table],
                    tenant,
                    conflict=modes[table] == MERGE,
                    progress=progress,
                )
                report.skipped = report.in_export - report.inserted
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # a dangling reference fails here, not at COMMIT
            for table, report in outcome.report.items():
                report.after = _count(cursor, table, tenant)
                expected = report.in_export if report.mode == REPLACE else report.before + report.inserted
                if report.after != expected:
                    raise RestoreFailed(
                        f"{table}: {report.after} rows after the restore, expected {expected} "
                        "(a write of this tenant raced the restore?)"
                    )
            if writer:
                writer.finish()  # on disk (fsync) before the rows it holds are deleted for good
    except BaseException:
        if writer:
            writer.discard()  # rolled back: nothing was removed, the live rows are still there
        raise


def db_value(field: models.Field, value: Any) -> Any:
    """An exported value as the database takes it: JSON columns as Jsonb (psycopg adapts no dict)."""
    value = field.to_python(value)
    return Jsonb(value) if isinstance(field, models.JSONField) and value is not None else value


def _delete_returning(cursor, table: str, fields: list[models.Field], tenant: Tenant) -> list[tuple]:
    statement = sql.SQL("DELETE FROM {} WHERE tenant_id = %s RETURNING {}").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(f.column) for f in fields)
    )
    cursor.execute(statement.as_string(cursor.connection), [tenant.pk])
    return list(cursor.fetchall())


def _insert_rows(
    cursor,
    manifest: Manifest,
    entry: dict[str, Any],
    model: type[models.Model],
    tenant: Tenant,
    *,
    conflict: bool,
    progress: Progress | None,
) -> tuple[int, int]:
    """Insert the export's rows of one table; (rows in the export, rows inserted)."""
    fields = columns_of(model)
    tenant_column = [f.column for f in fields].index("tenant_id")
    row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(fields)))
    head = sql.SQL("INSERT INTO {} ({}) VALUES ").format(
        sql.Identifier(entry["table"]), sql.SQL(", ").join(sql.Identifier(f.column) for f in fields)
    )
    tail = sql.SQL(" ON CONFLICT DO NOTHING") if conflict else sql.SQL("")
    seen = inserted = 0

    def flush(batch: list[list[Any]]) -> int:
        statement = head + sql.SQL(", ").join([row] * len(batch)) + tail
        cursor.execute(statement.as_string(cursor.connection), [v for values in batch for v in values])
        return int(cursor.rowcount)

    batch: list[list[Any]] = []
    for data in _rows(manifest.path / entry["file"]):
        try:
            values = [db_value(f, data[f.column]) for f in fields]
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            raise RestoreFailed(f"{entry['file']} row {seen + 1}: bad or missing value ({exc})") from exc
        if values[tenant_column] != tenant.pk:
            raise RestoreFailed(f"{entry['file']} row {seen + 1} belongs to another tenant.")
        batch.append(values)
        seen += 1
        if len(batch) == INSERT_BATCH:
            inserted += flush(batch)
            batch = []
            if progress:
                progress(entry["table"], seen)
    if batch:
        inserted += flush(batch)
    if progress:
        progress(entry["table"], seen)
    return seen, inserted


class _SafetyExport:
    """What a replace deletes, written as a tenant export (restorable with --mode merge) while the
    deleting transaction is still open: exactly the rows removed, no gap for a write in between."""

    def __init__(self, path: Path, tenant: Tenant, alias: str) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.partial.mkdir(parents=True, mode=0o700)  # users.ndjson may hold password hashes
        self.files: dict[str, dict[str, Any]] = {}
        self.alias = alias
        tenant_fields = columns_of(Tenant)
        row = Tenant.objects.using(alias).filter(pk=tenant.pk).values(*[f.attname for f in tenant_fields]).get()
        self.tenant = tenant
        self.write("tenants", tenant_fields, [tuple(row[f.attname] for f in tenant_fields)])
        for model in tenant_models():  # every table listed, empty where nothing was removed
            self.write(model._meta.db_table, columns_of(model), [])

    def write(self, table: str, fields: list[models.Field], rows: list[tuple]) -> None:
        digest, file = hashlib.sha256(), self.partial / f"{table}.ndjson"
        with file.open("wb") as handle:
            for values in rows:
                line = encode_row({f.column: v for f, v in zip(fields, values, strict=True)})
                handle.write(line)
                digest.update(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.files[table] = {
            "table": table,
            "file": file.name,
            "rows": len(rows),
            "sha256": digest.hexdigest(),
            "columns": [f.column for f in fields],
        }

    def finish(self) -> None:
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tenant": {
                "id": str(self.tenant.pk),
                "slug": self.tenant.slug,
                "name": self.tenant.name,
                "subscription_tier": self.tenant.subscription_tier,
            },
            "exported_at": datetime.now(UTC).isoformat(),
            "schema_version": schema_version(self.alias),
            "files": list(self.files.values()),
            "note": "rows removed by restore_tenant --mode replace",
        }
        with (self.partial / MANIFEST).open("w") as handle:
            handle.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.partial.rename(self.path)

    def discard(self) -> None:
        for candidate in (self.partial, self.path):
            if candidate.exists():
                shutil.rmtree(candidate)


def iter_tables(tables: str | list[str] | None) -> Iterator[str]:
    """`--tables a,b c`: names split on commas and spaces."""
    for item in [tables] if isinstance(tables, str) else tables or []:
        yield from (name for name in item.replace(",", " ").split() if name)
