"""The tenant setting on a database connection, and nothing else.

`app.current_tenant_id` is only ever set with `SET LOCAL`, i.e.
transaction-locally: it ends with the transaction, so a pooled or persistent
connection never carries one request's tenant into the next. Outside a
transaction PostgreSQL would drop it at once, so callers (tenants.context)
always hold a transaction open.

Why `SET LOCAL` and not `set_config(..., true)`: on a Citus coordinator only a
`SET LOCAL` statement is forwarded to the workers (with the app role's
`citus.propagate_set_commands = 'local'`); a `set_config()` call is not, and
every distributed query would then see no tenant. `SET` takes no bound
parameters, so the value is first parsed as a UUID and then quoted by
psycopg (`sql.Literal`), never formatted into the string by hand. It is sent
as a statement of its own: Citus forwards the whole query string that holds
a `SET LOCAL` to the workers. (docs/design.md, "The tenant setting").
"""

from __future__ import annotations

import uuid

from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

from tenants.constants import TENANT_SETTING


def set_tenant_setting(connection: BaseDatabaseWrapper, tenant_id: uuid.UUID | None) -> None:
    """Set (or clear, with None) the tenant for the connection's current transaction.

    Clearing writes '' rather than NULL: that is what PostgreSQL itself leaves
    after a local setting ends, and the policies read it through NULLIF.
    """
    with connection.cursor() as cursor:
        cursor.execute(set_tenant_statement(tenant_id).as_string(cursor.connection))


def set_tenant_statement(tenant_id: uuid.UUID | None) -> sql.Composed:
    """`SET LOCAL app.current_tenant_id = '<uuid>'`, the value quoted by psycopg."""
    # uuid.UUID(str(...)) refuses anything that is not a UUID before it nears SQL.
    value = "" if tenant_id is None else str(uuid.UUID(str(tenant_id)))
    return sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(*TENANT_SETTING.split(".")), sql.Literal(value))


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
