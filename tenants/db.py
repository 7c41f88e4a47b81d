"""The tenant setting on a database connection, and nothing else.

`app.current_tenant_id` is only ever set with `set_config(..., true)`, i.e.
transaction-locally, with the value as a bound parameter: it ends with the
transaction, so a pooled or persistent connection never carries one request's
tenant into the next. Outside a transaction PostgreSQL would drop it at once,
so callers (tenants.context) always hold a transaction open.
"""

from __future__ import annotations

import uuid

from django.db.backends.base.base import BaseDatabaseWrapper

from tenants.constants import TENANT_SETTING


def set_tenant_setting(connection: BaseDatabaseWrapper, tenant_id: uuid.UUID | None) -> None:
    """Set (or clear, with None) the tenant for the connection's current transaction.

    Clearing writes '' rather than NULL: that is what PostgreSQL itself leaves
    after a local setting ends, and the policies read it through NULLIF.
    """
    value = "" if tenant_id is None else str(tenant_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [TENANT_SETTING, value])


def in_failed_transaction(connection: BaseDatabaseWrapper) -> bool:
    """True when a statement failed and PostgreSQL now refuses every query until rollback."""
    from psycopg.pq import TransactionStatus

    raw = connection.connection
    return raw is not None and raw.info.transaction_status == TransactionStatus.INERROR


def read_tenant_setting(connection: BaseDatabaseWrapper) -> str | None:
    """The setting as the database sees it now ('' or None when no tenant is set)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [TENANT_SETTING])
        return cursor.fetchone()[0]
