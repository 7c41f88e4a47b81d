"""The distributed layout that `migrate` builds on a coordinator (tenants 0012),
checked on the coordinator and on every shard of every worker, as the owner.

- `tenants` a reference table; the seven tenant tables distributed by
  tenant_id in one colocation group, over more than one worker;
- primary keys (tenant_id, id); every unique key and foreign key of a tenant
  table holds tenant_id; the keys between tenant tables are (tenant_id, ...);
- every shard has the same forced RLS, the same policies (inline shape: no
  sub-select) and the same grants as its distributed table.
"""

from __future__ import annotations

import pytest
from django.db import connections
from psycopg import sql

from tenants.constants import APP_ROLE, POLICY_NAMES
from tenants.registry import tenant_tables
from tests.support.citus_layout import layout_problems

TENANT_TABLES = tenant_tables()

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

KEYS = """
SELECT conrelid::regclass::text, conname, contype::text,
       ARRAY(SELECT attname::text FROM unnest(conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = conrelid AND a.attnum = k.n ORDER BY i)
FROM pg_constraint WHERE contype IN ('p', 'u', 'f') AND conrelid::regclass::text = ANY(%s)
"""
POLICIES = """
SELECT polname::text, polcmd::text, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid),
       ARRAY(SELECT rolname::text FROM pg_roles WHERE oid = ANY(polroles) ORDER BY 1)
FROM pg_policy WHERE polrelid = %s::regclass ORDER BY 1
"""
# Run on every shard by run_command_on_shards; '%s' there is the shard's name.
SHARD_SECURITY = (
    sql.SQL(
        "SELECT concat_ws('|', relrowsecurity, relforcerowsecurity, "
        "(SELECT string_agg(concat_ws(':', polname, polcmd, pg_get_expr(polqual, polrelid), "
        "pg_get_expr(polwithcheck, polrelid)), ';' ORDER BY polname) FROM pg_policy WHERE polrelid = c.oid), "
        "(SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM information_schema.role_table_grants "
        "WHERE table_name = c.relname AND grantee = {app})) FROM pg_class c WHERE c.oid = '%s'::regclass"
    )
    .format(app=sql.Literal(APP_ROLE))
    .as_string(None)
)


def owner_rows(query: str, params: list) -> list[tuple]:
    with connections["owner"].cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def test_tenants_is_a_reference_table_and_tenant_tables_are_distributed_and_colocated():
    with connections["owner"].cursor() as cursor:
        assert layout_problems(cursor) == []


def test_every_primary_unique_and_foreign_key_of_a_tenant_table_holds_tenant_id():
    keys = owner_rows(KEYS, [list(TENANT_TABLES)])
    primary = {table: columns for table, _, kind, columns in keys if kind == "p"}
    assert primary == {table: ["tenant_id", "id"] for table in TENANT_TABLES}
    assert [k for k in keys if "tenant_id" not in k[3]] == []
    # Foreign keys to users lead with tenant_id on both sides (colocated check on the worker).
    user_keys = owner_rows(
        "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = 'users'::regclass",
        [],
    )
    # The audit log names its actor by a label, not a key: events outlive users.
    assert {t for t, _ in user_keys} == set(TENANT_TABLES) - {"users", "audit_events", "idempotency_keys"}
    assert all(d == "FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id)" for _, d in user_keys), user_keys


def test_policies_are_the_seeds_and_inline():
    for table in TENANT_TABLES:
        policies = owner_rows(POLICIES, [table])
        assert {p[0] for p in policies} == set(POLICY_NAMES), table
        for name, _, qual, check, _ in policies:
            for expression in filter(None, (qual, check)):
                assert "SELECT" not in expression.upper(), (table, name, expression)  # Citus refuses sub-selects


@pytest.mark.parametrize("table", ["tenants", *TENANT_TABLES])
def test_every_shard_has_the_tables_rls_policies_and_grants(table):
    """The coordinator's own copy of the check, run on the distributed table, is
    what every shard must match."""
    [(expected,)] = owner_rows(SHARD_SECURITY.replace("'%s'::regclass", "%s::regclass"), [table])
    shards = owner_rows("SELECT shardid, success, result FROM run_command_on_shards(%s, %s)", [table, SHARD_SECURITY])
    assert len(shards) >= (1 if table == "tenants" else 2)
    assert {(ok, result) for _, ok, result in shards} == {(True, expected)}, (expected, shards[:3])
    if table != "tenants":
        enabled, forced, *_ = expected.split("|")
        assert (enabled, forced) == ("t", "t")
