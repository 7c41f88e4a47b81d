"""Offboarding: hand a leaving tenant its data, then erase it, one short step at a time.

`offboard_tenant()` is the one implementation; `manage.py offboard_tenant` and
the admin's "Offboard" action both call it. In order:
1. refuse the platform tenant (its users are the staff);
2. refuse without a verified export of this tenant at `export_path` (every
   checksum and row count as its manifest says), unless `no_export_reason`
   says why there is none;
3. suspend the tenant at once (its next API request is a 403), then compare
   the live row counts with the export's: a stale export is refused (the
   tenant stays suspended; export again);
4. delete its rows table by table, children before parents (users last), in
   batches of `batch_size`, each batch its own short transaction, so
   neighbours' traffic never waits behind one long lock holder;
5. delete the tenant row itself.
Each step is an audit entry (tenant.offboard.started / .deleted / .finished,
or .failed with the error). Interrupted (Ctrl-C, a lost connection), it
leaves committed batches behind; running it again finds the unfinished
`started` entry and resumes from where it stopped without asking for a new
export (the rows it covered are partly gone by then), but it re-checks the
export it was given against what is left: it must be the very export the
offboarding started with (same manifest checksum), every table already
emptied must still be empty, and every table not yet started must still hold
exactly the exported rows. Rows written since (say, by a tenant someone
reactivated) would otherwise be deleted with no export of them.

While an offboarding is unfinished the tenant cannot be made active again
(`refuse_activation_while_offboarding`, a guard of tenants.services): its
users would log in to a half-deleted firm.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from psycopg import sql

from platform_ops.models import AuditEntry
from platform_ops.tenant_export import ExportError, Manifest, verify_export
from tenants import platform_audit as audit
from tenants import services
from tenants.constants import OWNER_DATABASE
from tenants.models import Tenant
from tenants.platform_audit import Actor
from tenants.registry import tenant_models, tenant_rows_count_sql
from tenants.rules import is_platform

STARTED, FINISHED = "tenant.offboard.started", "tenant.offboard.finished"
DELETED = "tenant.offboard.deleted"
DEFAULT_BATCH = 1000

Progress = Callable[[str, int], None]


class OffboardingRefused(Exception):
    """Offboarding would not be safe; the message says what to do instead. Nothing was deleted."""


@dataclass
class Offboarding:
    tenant_id: str
    slug: str
    resumed: bool
    deleted: dict[str, int] = field(default_factory=dict)


def deletion_order() -> list[str]:
    """Children before parents: the reverse of the insert order (users last)."""
    return [m._meta.db_table for m in reversed(tenant_models())]


def live_counts(tenant: Tenant, alias: str = OWNER_DATABASE) -> dict[str, int]:
    counts = {}
    with connections[alias].cursor() as cursor:
        for table in deletion_order():
            cursor.execute(tenant_rows_count_sql(table).as_string(cursor.connection), [tenant.pk])
            counts[table] = cursor.fetchone()[0]
    return counts


def unfinished_offboarding(tenant: Tenant, alias: str = OWNER_DATABASE) -> AuditEntry | None:
    """The `started` entry of an offboarding of this tenant that never finished, if any."""
    entries = AuditEntry.objects.using(alias).filter(tenant_id=tenant.pk, action__in=[STARTED, FINISHED])
    last = entries.order_by("-at", "-id").first()
    return last if last is not None and last.action == STARTED else None


def refuse_activation_while_offboarding(tenant: Tenant) -> None:
    """The activation guard (registered in platform_ops.apps): no active half tenant."""
    if audit.audit_table_exists() and unfinished_offboarding(tenant) is not None:
        raise ValidationError(
            {
                "status": f"Tenant '{tenant.slug}' has an unfinished offboarding: it stays suspended. "
                f"Resume it with `manage.py offboard_tenant {tenant.slug} --export PATH`."
            },
            code="offboarding_unfinished",
        )


def _resume_problems(
    tenant: Tenant, started: AuditEntry, manifest: Manifest | None, export_path: Path | None, alias: str
) -> str:
    """Why resuming `started` with this export would delete rows nobody exported ('' when it is safe)."""
    started_sha = (started.detail or {}).get("manifest_sha256")
    if manifest is None:
        return "" if started_sha is None else "this offboarding started from an export: pass the same --export PATH"
    if started_sha is not None and manifest.sha256() != started_sha:
        return f"{export_path} is not the export this offboarding started with (manifest checksum differs)"
    emptied = set(
        AuditEntry.objects.using(alias)
        .filter(tenant_id=tenant.pk, action=DELETED, id__gt=started.id)
        .values_list("detail__table", flat=True)
    )
    exported = manifest.rows()
    live = live_counts(tenant, alias)
    partial_allowed = next((t for t in deletion_order() if t not in emptied), None)
    stale = {}
    for table, rows in live.items():
        want = exported.get(table, 0)
        if (
            (table in emptied and rows)
            or rows > want
            or (table != partial_allowed and table not in emptied and rows != want)
        ):
            stale[table] = (0 if table in emptied else want, rows)
    return f"rows changed since the export (table: expected, live): {stale}" if stale else ""


def _delete_batch(alias: str, table: str, tenant: Tenant, after: uuid.UUID, batch_size: int) -> list[uuid.UUID]:
    """Delete the next batch of the tenant's rows by id after `after`; the ids deleted.

    Walking the ids (rather than "any N rows of the tenant") keeps every batch
    from re-reading the dead rows the previous batches left before VACUUM.
    """
    statement = sql.SQL(
        "DELETE FROM {t} WHERE tenant_id = %(tenant)s AND id IN "
        "(SELECT id FROM {t} WHERE tenant_id = %(tenant)s AND id > %(after)s ORDER BY id LIMIT %(size)s) "
        "RETURNING id"
    ).format(t=sql.Identifier(table))
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        # Row locks only; never queue long behind DDL while holding others up.
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{settings.MIGRATION_LOCK_TIMEOUT_MS}ms"])
        cursor.execute(
            statement.as_string(cursor.connection), {"tenant": tenant.pk, "after": after, "size": batch_size}
        )
        return [row[0] for row in cursor.fetchall()]


def offboard_tenant(
    tenant: Tenant,
    *,
    export_path: Path | None = None,
    no_export_reason: str = "",
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    request=None,
    alias: str = OWNER_DATABASE,
) -> Offboarding:
    by = Actor.of_request(request) if request is not None else None
    if is_platform(tenant):
        raise OffboardingRefused("The platform tenant cannot be offboarded: its users are the staff.")
    resuming = unfinished_offboarding(tenant, alias)
    manifest = None
    if export_path is not None:
        try:
            manifest = verify_export(export_path)
        except ExportError as exc:
            raise OffboardingRefused(f"No verified export at {export_path}: {exc}") from exc
        if manifest.tenant_id != tenant.pk:
            raise OffboardingRefused(f"{export_path} is an export of tenant '{manifest.slug}', not of '{tenant.slug}'.")
    elif not no_export_reason.strip():
        raise OffboardingRefused(
            "Refusing to offboard without a verified export: pass --export PATH (made by export_tenant), "
            "or --no-export --reason TEXT."
        )
    reason = no_export_reason.strip() or f"export verified at {export_path}"
    outcome = Offboarding(str(tenant.pk), tenant.slug, resumed=resuming is not None)

    # Suspended through the service every surface uses (it records the change).
    services.tenant_set_status(tenant, Tenant.Status.SUSPENDED, by=by, reason="offboarding", using=alias)
    if resuming is not None:
        problem = _resume_problems(tenant, resuming, manifest, export_path, alias)
        if problem:
            audit.record(
                "tenant.offboard",
                tenant=tenant,
                result="refused",
                reason=reason,
                detail={"resume": problem},
                by=by,
                alias=alias,
            )
            raise OffboardingRefused(
                f"Refusing to resume the offboarding of '{tenant.slug}': {problem}. "
                "Nothing was deleted; export again and check what changed."
            )
    if resuming is None:
        if manifest is not None:
            live = live_counts(tenant, alias)
            exported = {table: rows for table, rows in manifest.rows().items() if table in live}
            if live != exported:
                stale = {t: (exported.get(t), n) for t, n in live.items() if exported.get(t) != n}
                audit.record(
                    "tenant.offboard",
                    tenant=tenant,
                    result="refused",
                    reason=reason,
                    detail={"stale": stale},
                    by=by,
                    alias=alias,
                )
                raise OffboardingRefused(
                    f"The export at {export_path} is stale (table: exported, live): {stale}. "
                    f"Tenant '{tenant.slug}' stays suspended; export again, then offboard."
                )
        audit.record(
            STARTED,
            tenant=tenant,
            reason=reason,
            detail={
                "export": str(Path(export_path).resolve()) if export_path else None,
                "manifest_sha256": manifest.sha256() if manifest else None,
                "batch_size": batch_size,
            },
            by=by,
            alias=alias,
        )
    try:
        for table in deletion_order():
            deleted, after = 0, uuid.UUID(int=0)
            while True:
                ids = _delete_batch(alias, table, tenant, after, batch_size)
                if not ids:
                    break
                deleted, after = deleted + len(ids), max(ids)
                if progress:
                    progress(table, deleted)
            outcome.deleted[table] = deleted
            audit.record(DELETED, tenant=tenant, detail={"table": table, "rows": deleted}, by=by, alias=alias)
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute("DELETE FROM tenants WHERE id = %s", [tenant.pk])
    except BaseException as exc:
        # Committed batches stay deleted; a re-run resumes. Written on its own
        # connection: the caller's may be the one that just failed.
        audit.record(
            "tenant.offboard.failed",
            tenant=tenant,
            result="failed",
            detail={"error": f"{type(exc).__name__}: {exc}", "deleted_so_far": outcome.deleted},
            by=by,
            alias=alias,
            durable=True,
        )
        raise
    audit.record(FINISHED, tenant=tenant, reason=reason, detail={"deleted": outcome.deleted}, by=by, alias=alias)
    return outcome
