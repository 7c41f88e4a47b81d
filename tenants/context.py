"""The ONE place that knows the current tenant.

`tenant_context(tenant)` is how every piece of code (requests, commands,
scripts, tests) says "run as this tenant". It
- sets a ContextVar, read by the tenant-scoped ORM (tenants.models);
- opens a transaction on the app connection and, when RLS_ENABLED is true,
  sets `app.current_tenant_id` transaction-locally inside it, so PostgreSQL
  enforces the same boundary even for raw SQL or a forgotten filter;
- restores the previous tenant on exit, also on exceptions, and nests.

Failure is closed: code that needs a tenant and runs outside any context gets
`NoTenantContext`; the database, with no setting, returns no rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from tenants.database.tenant_setting import Query, in_failed_transaction, open_tenant_transaction, set_tenant_setting

if TYPE_CHECKING:
    from tenants.models import Tenant

_current_tenant_id: ContextVar[uuid.UUID | None] = ContextVar("current_tenant_id", default=None)


class NoTenantContext(RuntimeError):
    """Tenant-scoped data was touched outside `tenant_context()`."""

    def __init__(self) -> None:
        super().__init__(
            "No tenant context: wrap this code in tenants.context.tenant_context(tenant), "
            "or use .unscoped() for deliberate cross-tenant platform work."
        )


def current_tenant_id() -> uuid.UUID | None:
    """The tenant this code runs as, or None outside any tenant context."""
    return _current_tenant_id.get()


def require_tenant_id() -> uuid.UUID:
    tenant_id = _current_tenant_id.get()
    if tenant_id is None:
        raise NoTenantContext()
    return tenant_id


def _as_tenant_id(tenant: Tenant | uuid.UUID | str) -> uuid.UUID:
    if isinstance(tenant, uuid.UUID):
        return tenant
    if isinstance(tenant, str):
        return uuid.UUID(tenant)
    return tenant.pk


@contextmanager
def tenant_context(tenant: Tenant | uuid.UUID | str, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[uuid.UUID]:
    """Run the block as `tenant`, in one transaction on connection `using`."""
    with tenant_transaction(tenant, using=using) as (tenant_id, _):
        yield tenant_id


@contextmanager
def tenant_transaction(
    tenant: Tenant | uuid.UUID | str,
    queries: Sequence[Query] = (),
    *,
    using: str = DEFAULT_DB_ALIAS,
    read_only: bool = False,
    read_only_guard: Query | None = None,
) -> Iterator[tuple[uuid.UUID, list[tuple | None]]]:
    """`tenant_context` whose opening round trip also runs `queries` (SQL, params).

    `read_only` / `read_only_guard`: the transaction is opened READ ONLY, or
    made so when the guard's condition holds, in that same round trip
    (tenants.database.tenant_setting.open_tenant_transaction). Top-level
    blocks only: a nested block runs in its outer transaction's mode.

    BEGIN, the tenant setting and the queries travel together (tenants.database.tenant_setting
    open_tenant_transaction): RLS adds no round trip, and a request that
    must look something up first (the middleware: tenant and user) pays one
    trip for all of it. Yields the tenant id and the first row of each query.
    """
    tenant_id = _as_tenant_id(tenant)
    previous = _current_tenant_id.get()
    token = _current_tenant_id.set(tenant_id)
    connection = connections[using]
    # A top-level transaction takes the local setting with it when it ends; a
    # savepoint does not (docs/design.md), so only a nested block restores by hand.
    nested = connection.in_atomic_block
    try:
        with transaction.atomic(using=using):
            rows: list[tuple | None] = []
            if settings.RLS_ENABLED or queries or not nested:
                rows = open_tenant_transaction(
                    connection,
                    tenant_id,
                    set_tenant=settings.RLS_ENABLED,
                    begin=not nested,
                    queries=queries,
                    read_only=read_only and not nested,
                    read_only_guard=read_only_guard,
                )
            yield tenant_id, rows
            # Releasing a savepoint keeps a local setting until the top-level
            # transaction ends (docs/design.md): put the outer tenant back by hand. If
            # the block is marked for rollback, the rollback restores it and
            # any query here would raise TransactionManagementError.
            if not transaction.get_rollback(using=using):
                if in_failed_transaction(connection):
                    # A statement failed and something caught the error: the
                    # block must roll back, which also restores the setting.
                    transaction.set_rollback(True, using=using)
                elif nested and settings.RLS_ENABLED:
                    set_tenant_setting(connection, previous)
                elif read_only and not nested and hasattr(connection, "commit_without_waiting"):
                    # Nothing was written: the COMMIT is sent, its answer read
                    # after the response (tenants.database.backend).
                    connection.commit_without_waiting()
    finally:
        _current_tenant_id.reset(token)
