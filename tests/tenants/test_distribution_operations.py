"""The Citus half of the migrations, seen from a plain PostgreSQL: the policy
shape both backends share, and the distribution steps being no-ops here.
(On a coordinator, tests/citus/ checks what they build.)"""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader

from tenants.catalog.distribution_operations import is_citus_coordinator
from tenants.catalog.rls_operations import EnableTenantRLS
from tenants.constants import INSERT_POLICY, ISOLATION_POLICY
from tenants.registry import tenant_tables
from tests.support.scratch import connect, manage, scratch_database

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

INLINE = "(NULLIF(current_setting('app.current_tenant_id'::text, true), ''::text))::uuid"
SUBSELECT = "(SELECT NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)"


@pytest.fixture
def plain_postgresql(db):
    if is_citus_coordinator(connections["owner"]):
        pytest.skip("checks the plain-PostgreSQL side; on a coordinator tests/citus/ checks the layout")


def policy_expressions(cursor) -> set[tuple[str, str, str | None, str | None]]:
    cursor.execute(
        "SELECT c.relname::text, p.polname::text, pg_get_expr(p.polqual, p.polrelid), "
        "pg_get_expr(p.polwithcheck, p.polrelid) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
        "WHERE p.polname = ANY(%s)",
        [[ISOLATION_POLICY, INSERT_POLICY]],
    )
    return set(cursor.fetchall())


def test_every_tenant_policy_compares_against_the_inline_expression():
    """Inline, not a sub-select: Citus refuses sub-selects in distributed tables' policies."""
    with connection.cursor() as cursor:
        rows = policy_expressions(cursor)
    assert {table for table, *_ in rows} == set(tenant_tables())
    for table, name, qual, check in rows:
        assert check == f"(tenant_id = {INLINE})", (table, name, check)
        assert qual in (None, f"(tenant_id = {INLINE})"), (table, name, qual)


def test_us004_keeps_its_own_frozen_sub_select_and_0011_rewrites_it():
    loader = MigrationLoader(None, ignore_no_migrations=True)  # the files only: the app role reads no history
    us004 = [
        statement.as_string(None)
        for operation in loader.get_migration("tenants", "0008_us004_enable_rls").operations
        if isinstance(operation, EnableTenantRLS)
        for statement in operation.statements()
    ]
    assert f'ON "trades" USING (tenant_id = {SUBSELECT}) WITH CHECK (tenant_id = {SUBSELECT})' in " ".join(us004)
    reshape = manage(connection.settings_dict["NAME"], "sqlmigrate", "tenants", "0011").stdout
    assert 'DROP POLICY IF EXISTS "tenant_isolation_policy" ON "trades"' in reshape
    assert "WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)" in reshape


def test_distribution_migration_prints_and_does_nothing_on_plain_postgresql(plain_postgresql):
    printed = manage(connection.settings_dict["NAME"], "sqlmigrate", "tenants", "0012").stdout
    statements = [line for line in printed.splitlines() if line and not line.startswith(("--", "BEGIN", "COMMIT"))]
    assert statements == []
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid::regclass::text = ANY(%s) "
            "AND cardinality(conkey) = 1",
            [list(tenant_tables())],
        )
        assert cursor.fetchone() == (len(tenant_tables()),), "single-node primary keys stay (id)"


def test_citus_distribute_refuses_a_plain_postgresql(plain_postgresql):
    with pytest.raises(CommandError, match="not a Citus coordinator"):
        call_command("citus_distribute")


@pytest.mark.slow
def test_policy_shape_migration_reverses_to_the_sub_select_and_back(plain_postgresql):
    with scratch_database("alphapulse_shape") as db:
        manage(db, "migrate")
        manage(db, "migrate", "tenants", "0009")
        with connect("owner", db) as owner, owner.cursor() as cursor:
            back = policy_expressions(cursor)
        assert back and all("SELECT" in (check or "") for *_, check in back)
        manage(db, "migrate")
        with connect("owner", db) as owner, owner.cursor() as cursor:
            again = policy_expressions(cursor)
        assert again and not any("SELECT" in (check or "") for *_, check in again)
