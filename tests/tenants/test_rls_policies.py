"""US-004 at the SQL level, for every tenant table, as the app role.

These bypass the ORM on purpose: they prove what PostgreSQL itself enforces
when a query forgets its filter. Each "B cannot" is paired with "A can", so a
policy that denied everything would fail here too.
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from psycopg import sql

from tenants.constants import BYPASS_ROLE, INSERT_POLICY, ISOLATION_POLICY
from tenants.context import tenant_context
from tenants.registry import never_deleted_tables, tenant_tables
from tests.support.factories import FACTORY_BY_TABLE, SESSION_FACTORY_BY_TABLE, UserFactory

# The audit log is append-only (no UPDATE or DELETE for the app role) and has no user key:
# its RLS is tests/tenants/test_tenant_audit.py's.
TENANT_TABLES = [table for table in tenant_tables() if table != "audit_events"]

pytestmark = [pytest.mark.django_db, pytest.mark.citus]  # also on the cluster (make test-citus)


def run(query: sql.Composable, params=None):
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection), params)
        return cursor.fetchall() if cursor.description else cursor.rowcount


def count(table: str, column: str | None = None, value=None) -> int:
    """Rows of `table` this connection can see (optionally where column = value), with no tenant filter of ours."""
    if column is None:
        return run(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))[0][0]
    query = sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(sql.Identifier(table), sql.Identifier(column))
    return run(query, [value])[0][0]


def refused(query: sql.Composable, params=None) -> str:
    """Run a statement that must fail; return the error, keep the test transaction usable."""
    with pytest.raises(DatabaseError) as excinfo, transaction.atomic():
        run(query, params)
    return str(excinfo.value)


@pytest.fixture
def rows(user_a, user_b):
    """One row in each tenant for every table: {table: (row_a_id, row_b_id)}."""
    created = {"users": (user_a.pk, user_b.pk)}
    for table, factory in {**FACTORY_BY_TABLE, **SESSION_FACTORY_BY_TABLE}.items():
        created[table] = (factory(user=user_a).pk, factory(user=user_b).pk)
    created["idempotency_keys"] = (idempotency_key(user_a), idempotency_key(user_b))
    return created


def idempotency_key(user):
    """A claimed Idempotency-Key of `user` (its principal; the table has no user key)."""
    from tenants.http.idempotency import principal_of
    from tenants.models import IdempotencyKey

    with tenant_context(user.tenant):
        return IdempotencyKey.objects.create(principal=principal_of(user.pk), key="k", fingerprint="f" * 64).pk


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_no_tenant_set_sees_no_rows_and_raises_no_error(table, rows, tenant_a):
    assert count(table) == 0
    # The empty-setting trap: a tenant was set (and reset) earlier on this
    # connection, so the setting now reads '' rather than NULL.
    with tenant_context(tenant_a):
        assert count(table) == 1
    assert count(table) == 0


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_tenant_sees_only_its_own_rows_even_without_a_filter(table, rows, tenant_a, tenant_b):
    row_a, row_b = rows[table]
    with tenant_context(tenant_a):
        assert count(table, "id", row_a) == 1
        assert count(table, "id", row_b) == 0
        assert count(table, "tenant_id", tenant_b.pk) == 0
    with tenant_context(tenant_b):
        assert count(table, "id", row_b) == 1
        assert count(table, "id", row_a) == 0


def _copy_into_other_tenant(table: str, row_id, tenant_b, user_b) -> sql.Composable:
    """INSERT a copy of a visible row, labelled with tenant B (and B's user)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
            [table],
        )
        columns = [c for (c,) in cursor.fetchall()]
    values = []
    for column in columns:
        if column == "id":
            values.append(sql.SQL("gen_random_uuid()"))
        elif column == "tenant_id":
            values.append(sql.Literal(str(tenant_b.pk)))
        elif column == "user_id":
            values.append(sql.Literal(str(user_b.pk)))
        elif column == "username":
            values.append(sql.Literal("intruder"))
        else:
            values.append(sql.Identifier(column))
    return sql.SQL("INSERT INTO {t} ({cols}) SELECT {vals} FROM {t} WHERE id = {id}").format(
        t=sql.Identifier(table),
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        vals=sql.SQL(", ").join(values),
        id=sql.Literal(str(row_id)),
    )


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_insert_labelled_with_another_tenant_is_refused(table, rows, tenant_a, tenant_b, user_b):
    with tenant_context(tenant_a):
        error = refused(_copy_into_other_tenant(table, rows[table][0], tenant_b, user_b))
    assert "row-level security" in error
    with tenant_context(tenant_b):
        assert count(table) == 1


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_update_cannot_move_a_row_to_another_tenant(table, rows, tenant_a, tenant_b):
    row_a, _ = rows[table]
    with tenant_context(tenant_a):
        error = refused(
            sql.SQL("UPDATE {} SET tenant_id = %s WHERE id = %s").format(sql.Identifier(table)), [tenant_b.pk, row_a]
        )
        assert count(table, "id", row_a) == 1
    # On Citus tenant_id is the distribution column, which no UPDATE may change.
    assert "row-level security" in error or "foreign key" in error or "partition value" in error


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_delete_of_other_tenants_rows_touches_none(table, rows, tenant_a, tenant_b):
    _, row_b = rows[table]
    with tenant_context(tenant_a):
        if table in never_deleted_tables():  # sessions end, keys are revoked: no DELETE at all
            assert "permission denied" in refused(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
        else:
            deleted = run(sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(table)), [row_b])
            assert deleted == 0
        if table != "users" and table not in never_deleted_tables():  # A's own user is still referenced by A's rows
            deleted_all = run(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
            assert deleted_all == 1  # its own row only
    with tenant_context(tenant_b):
        assert count(table, "id", row_b) == 1


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_app_role_cannot_truncate_alter_or_drop_policies(table, rows):
    t = sql.Identifier(table)
    assert "permission denied" in refused(sql.SQL("TRUNCATE {} CASCADE").format(t))
    assert "must be owner" in refused(sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(t))
    assert "must be owner" in refused(sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(t))
    for policy in (ISOLATION_POLICY, INSERT_POLICY):
        assert "must be owner" in refused(sql.SQL("DROP POLICY {} ON {}").format(sql.Identifier(policy), t))


def test_app_role_cannot_become_the_bypass_role():
    error = refused(sql.SQL("SET ROLE {}").format(sql.Identifier(BYPASS_ROLE)))
    assert "permission denied" in error


# An idempotency key names its principal by a label (a user or an API key): no user key.
@pytest.mark.parametrize("table", [t for t in TENANT_TABLES if t not in ("users", "idempotency_keys")])
def test_row_cannot_reference_another_tenants_user(table, rows, tenant_a, user_b):
    """Foreign-key checks run past RLS; the composite key closes that hole."""
    with tenant_context(tenant_a):
        error = refused(
            sql.SQL("UPDATE {} SET user_id = %s WHERE id = %s").format(sql.Identifier(table)),
            [user_b.pk, rows[table][0]],
        )
    assert "foreign key" in error


def test_same_username_may_exist_in_two_tenants(tenant_a, tenant_b):
    UserFactory(tenant=tenant_a, username="sam")
    UserFactory(tenant=tenant_b, username="sam")
    with tenant_context(tenant_a):
        assert count("users", "username", "sam") == 1
