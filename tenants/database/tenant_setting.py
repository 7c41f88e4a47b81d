"""The tenant setting on a database connection: set, read back, and sent with a transaction's first queries.

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

import functools
import uuid
from collections.abc import Sequence
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

from tenants.constants import TENANT_SETTING


def set_tenant_setting(connection: BaseDatabaseWrapper, tenant_id: uuid.UUID | None) -> None:
    """Set (or clear, with None) the tenant for the connection's current transaction.

    Clearing writes '' rather than NULL: that is what PostgreSQL itself leaves
    after a local setting ends, and the policies read it through NULLIF.
    """
    with connection.cursor() as cursor:
        cursor.execute(set_tenant_sql(tenant_id))


@functools.lru_cache(maxsize=4096)
def set_tenant_sql(tenant_id: uuid.UUID | None) -> str:
    """The text of set_tenant_statement, composed by psycopg once per tenant.

    Composing and quoting it costs tens of microseconds each time (measured
    40-140 us on the bench machine): more than the statement costs PostgreSQL.
    The text depends on the tenant id alone (a UUID, ASCII), so it is kept.
    """
    return set_tenant_statement(tenant_id).as_string(None)


def set_tenant_statement(tenant_id: uuid.UUID | None) -> sql.Composed:
    """`SET LOCAL app.current_tenant_id = '<uuid>'`, the value quoted by psycopg."""
    # uuid.UUID(str(...)) refuses anything that is not a UUID before it nears SQL.
    value = "" if tenant_id is None else str(uuid.UUID(str(tenant_id)))
    return sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(*TENANT_SETTING.split(".")), sql.Literal(value))


# A statement for the opening round trip: SQL with %s placeholders, and its parameters.
Query = tuple[str, Sequence[Any]]


def open_tenant_transaction(
    connection: BaseDatabaseWrapper,
    tenant_id: uuid.UUID | None,
    *,
    set_tenant: bool,
    begin: bool,
    queries: Sequence[Query] = (),
    read_only: bool = False,
    read_only_guard: Query | None = None,
) -> list[tuple | None]:
    """The opening round trip of a tenant block: [BEGIN,] [SET LOCAL,] then `queries`, one pipeline.

    `read_only` (a top-level block only): `BEGIN READ ONLY`, so PostgreSQL
    refuses every write of the transaction (SQLSTATE 25006). `read_only_guard`
    (likewise): a statement sent after `queries` that turns the transaction
    read-only when its condition holds, with
    `set_config('transaction_read_only', 'on', true)` (allowed at any point:
    only the way back to read-write is refused). On a Citus coordinator that
    statement runs on the worker holding the tenant's rows, whose transaction
    then refuses every later write of the tenant; the coordinator holds no
    row the app role may write. A nested block (a savepoint) changes neither:
    it would leave its outer transaction read-only after it.

    Called right after Django entered the block's `atomic` (so Django, and the
    caller's ORM code, see a transaction). Every statement is still its own
    statement, as Citus needs for `SET LOCAL`, but they share one network
    round trip: psycopg's pipeline mode sends them all and syncs once. The
    rows of `queries` (the first row of each, or None) come back in order.

    `begin`: the block is a top-level transaction. psycopg would open it with
    a BEGIN of its own and wait for that BEGIN before anything else (it
    syncs after BEGIN in pipeline mode), a round trip by itself; instead, the
    psycopg connection is put in autocommit for the transaction start and
    BEGIN is sent here, in the pipeline. Django keeps its own autocommit flag
    (off, inside `atomic`), and psycopg's commit() and rollback() send COMMIT
    or ROLLBACK whenever the server is in a transaction, so the end of the
    block is Django's as usual; the next `atomic` puts psycopg's flag back.
    """
    raw = connection.connection
    cursors = []
    with connection.wrap_database_errors:
        if begin:
            raw.autocommit = True
        with raw.pipeline():
            with connection.cursor() as cursor:
                if begin:
                    cursor.execute(_begin_statement(raw.isolation_level, read_only))
                if set_tenant:
                    cursor.execute(set_tenant_sql(tenant_id))
            guard = [read_only_guard] if begin and read_only_guard is not None and not read_only else []
            for query, params in [*queries, *guard]:
                cursor = connection.cursor()
                cursor.execute(query, params)
                cursors.append(cursor)
        try:
            return [cursor.fetchone() for cursor in cursors][: len(queries)]
        finally:
            for cursor in cursors:
                cursor.close()


def _begin_statement(isolation_level: Any, read_only: bool = False) -> str:
    """BEGIN as psycopg itself would send it (with the configured isolation level, if any)."""
    statement = "BEGIN"
    if isolation_level is not None:
        statement += " ISOLATION LEVEL " + isolation_level.name.replace("_", " ")
    return statement + " READ ONLY" if read_only else statement


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
