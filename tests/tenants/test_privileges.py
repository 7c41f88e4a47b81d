"""The app role holds exactly its least-privilege set (docs/security.md, section 3: least privilege).

Each defect of the privilege review is tried as the app role itself, on the
test database: writing `tenants`, reading Django's session and admin tables,
a temp table shadowing a tenant table. The whole set is asserted twice: as
the module states it (tenants.catalog.privileges) and as a literal copy here, so a
new privilege, or a widened expected set, fails a test. An extra grant made
(and committed) by the owner must be named by the system check and
`rls_check`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction

from tenants.catalog.checks import check_app_role_privileges
from tenants.catalog.privileges import Privilege, actual_privileges, privilege_problems
from tenants.constants import APP_ROLE
from tests.support.scratch import connect, manage, scratch_database

pytestmark = [
    pytest.mark.django_db(databases=["default", "owner"]),
    pytest.mark.citus,
]  # also on the cluster (make test-citus)

TENANT_TABLES = (
    "users",
    "trades",
    "positions",
    "orders",
    "portfolio_snapshots",
    "risk_metrics",
    "agent_signals",
    "idempotency_keys",  # claimed, answered and taken over when expired (tenants.http.idempotency)
)
# The literal whole set: change it only together with tenants/catalog/privileges.py and docs/security.md.
EXPECTED = {
    Privilege("table", "public.tenants", "SELECT"),
    *(Privilege("table", f"public.{t}", p) for t in TENANT_TABLES for p in ("SELECT", "INSERT", "UPDATE", "DELETE")),
    # The tenant audit log is history: the app role writes an event and reads it, nothing more.
    Privilege("table", "public.audit_events", "SELECT"),
    Privilege("table", "public.audit_events", "INSERT"),
    # Sessions end and keys are revoked by an UPDATE: rows stay, the app role deletes none.
    *(
        Privilege("table", f"public.{t}", p)
        for t in ("user_sessions", "api_keys")
        for p in ("SELECT", "INSERT", "UPDATE")
    ),
    Privilege("schema", "public", "USAGE"),
    Privilege("database", "(current)", "CONNECT"),
    Privilege("role attribute", "", "LOGIN"),
    Privilege("role attribute", "", "INHERIT"),
}


def refused(statement: str, params=None) -> str:
    """Run `statement` as the app role in a savepoint; the database error's text, or '' if it ran."""
    try:
        with transaction.atomic(using="default"), connection.cursor() as cursor:
            cursor.execute(statement, params)
    except DatabaseError as exc:
        return str(exc)
    return ""


@contextmanager
def committed_grant(grant: str, revoke: str) -> Iterator[None]:
    """A grant the owner commits (the checks read the catalog on other connections), always revoked."""
    name = connections["owner"].settings_dict["NAME"]
    with connect("owner", name) as owner:
        owner.autocommit = True
        owner.execute(grant)
        try:
            yield
        finally:
            owner.execute(revoke)


def test_app_role_holds_exactly_the_least_privilege_set():
    assert privilege_problems(connections["owner"]) == []
    assert actual_privileges(connections["owner"]) == EXPECTED


def test_app_role_holds_exactly_the_set_on_every_node():
    """Issue 20 item 1: on Citus workers pg_stat_activity and pg_stat_statements were open to the app role
    (each worker session is a coordinator fragment with every value inlined). On one server: the server."""
    from tenants.catalog.nodes import each_node
    from tenants.catalog.privileges import privilege_problems_on_every_node, shard_privileges

    assert privilege_problems_on_every_node("owner") == []
    for label, node in each_node("owner"):
        assert actual_privileges(node) - shard_privileges(node, EXPECTED) == EXPECTED, label


def test_the_set_reads_the_same_from_the_app_connection():
    assert actual_privileges(connection) == EXPECTED


def test_app_role_cannot_delete_or_change_tenants(tenant_a, tenant_b):
    """Defect 1: DELETE cascaded past RLS; UPDATE un-suspended tenants and lifted tiers."""
    assert "permission denied for table tenants" in refused("DELETE FROM tenants WHERE id = %s", [tenant_b.id])
    assert "permission denied for table tenants" in refused("UPDATE tenants SET status = 'active'")
    assert "permission denied for table tenants" in refused(
        "INSERT INTO tenants (id, name, slug, subscription_tier, status, created_at, updated_at) "
        "VALUES (gen_random_uuid(), 'x', 'x', 'pro', 'active', now(), now())"
    )
    assert refused("SELECT id FROM tenants") == ""


@pytest.mark.parametrize(
    "table",
    [
        "django_session",
        "django_admin_log",
        "auth_permission",
        "auth_group",
        "auth_group_permissions",
        "django_content_type",
        "django_migrations",
        "pg_stat_statements",
    ],
)
def test_app_role_cannot_read_djangos_own_tables(table):
    """Defect 2: a live staff session was one SELECT away."""
    assert f"permission denied for {'view' if table.startswith('pg_') else 'table'} {table}" in refused(
        f"SELECT * FROM {table} LIMIT 1"  # noqa: S608 (a fixed table name from the list above)
    )


def test_app_role_cannot_see_other_sessions_statements():
    """pg_stat_activity shows every session of the role: every tenant's statement in flight."""
    assert "permission denied for view pg_stat_activity" in refused("SELECT query FROM pg_stat_activity")
    assert "permission denied for function pg_stat_get_activity" in refused("SELECT * FROM pg_stat_get_activity(NULL)")
    assert "permission denied for function pg_stat_get_backend_activity" in refused(
        "SELECT pg_stat_get_backend_activity(1)"
    )


def test_app_role_cannot_create_temp_tables():
    """Defect 4: a temp `trades` shadowed the real one for unqualified names."""
    assert "permission denied to create temporary tables" in refused("CREATE TEMP TABLE trades (LIKE public.trades)")


def test_app_role_cannot_create_anything_in_public():
    assert "permission denied for schema public" in refused("CREATE TABLE public.probe (id int)")
    assert "permission denied for schema public" in refused(
        "CREATE FUNCTION public.probe() RETURNS int LANGUAGE sql AS 'SELECT 1'"
    )


def test_app_role_search_path_ends_with_pg_temp():
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        assert cursor.fetchone() == ("public, pg_temp",)


def test_app_role_uses_no_sequence():
    with connection.cursor() as cursor:
        cursor.execute(
            # Citus's own catalog sequences (pg_catalog.pg_dist_*_seq) are PUBLIC's, and hold no tenant's data.
            "SELECT count(*) FROM pg_class WHERE relkind = 'S' AND relnamespace <> 'pg_catalog'::regnamespace "
            "AND (has_sequence_privilege(%s, oid, 'USAGE') OR has_sequence_privilege(%s, oid, 'SELECT'))",
            [APP_ROLE, APP_ROLE],
        )
        assert cursor.fetchone() == (0,)


def test_a_table_the_owner_creates_later_is_closed_to_the_app_role():
    """Default privileges no longer hand every new table (a platform audit table) to the app role."""
    with connections["owner"].cursor() as cursor:
        cursor.execute("CREATE TABLE platform_probe (id int)")
    assert privilege_problems(connections["owner"]) == []


def test_extra_table_privilege_is_an_error_that_names_it():
    with committed_grant(
        f"GRANT SELECT ON django_session TO {APP_ROLE}", f"REVOKE ALL ON django_session FROM {APP_ROLE}"
    ):
        errors = check_app_role_privileges(databases=["default"])
        assert [e.id for e in errors] == ["tenants.E002"]
        assert "extra privilege: SELECT on table public.django_session" in errors[0].msg
        # While migrate runs the check (owner alias only) it is a warning: never blocks the fix.
        assert [e.id for e in check_app_role_privileges(databases=["owner"])] == ["tenants.W003"]
    assert check_app_role_privileges(databases=["default"]) == []


@pytest.mark.parametrize(
    ("grant", "revoke", "named"),
    [
        ("GRANT DELETE ON tenants TO {app}", "REVOKE DELETE ON tenants FROM {app}", "DELETE on table public.tenants"),
        (
            "GRANT UPDATE (status) ON tenants TO {app}",
            "REVOKE UPDATE (status) ON tenants FROM {app}",
            "UPDATE on column public.tenants.status",
        ),
        (
            "GRANT CREATE ON SCHEMA public TO {app}",
            "REVOKE CREATE ON SCHEMA public FROM {app}",
            "CREATE on schema public",
        ),
        (
            "DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database()); END $$",
            "DO $$ BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()); END $$",
            "TEMPORARY on database (current)",
        ),
        (
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {app}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM {app}",
            "SELECT on default privilege alphapulse_owner in public: tables",
        ),
        (
            "GRANT TRUNCATE ON trades TO {app}",
            "REVOKE TRUNCATE ON trades FROM {app}",
            "TRUNCATE on table public.trades",
        ),
        (
            "CREATE FUNCTION public.probe_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "DROP FUNCTION public.probe_fn()",
            "EXECUTE on function probe_fn()",
        ),
    ],
)
def test_rls_check_names_every_extra_privilege(grant, revoke, named):
    with committed_grant(grant.format(app=APP_ROLE), revoke.format(app=APP_ROLE)):
        out = StringIO()
        with pytest.raises(CommandError) as failed:
            call_command("rls_check", stdout=out)
        assert failed.value.returncode == 1
        assert named in out.getvalue()
    assert privilege_problems(connections["owner"]) == []


def test_bypass_membership_is_extra_unless_in_the_documented_emergency(settings):
    with committed_grant(f"GRANT rls_bypass_role TO {APP_ROLE}", f"REVOKE rls_bypass_role FROM {APP_ROLE}"):
        assert any(
            "extra privilege: member of rls_bypass_role (MEMBER)" in e.msg
            for e in check_app_role_privileges(databases=["default"])
        )
        settings.RLS_ENABLED = False  # the emergency rollback: E001 and rls_check judge it
        assert check_app_role_privileges(databases=["default"]) == []


def test_a_search_path_without_pg_temp_last_is_named(monkeypatch):
    """Only a superuser may ALTER ROLE the app role; the comparison itself is what is tried here."""
    from tenants.catalog import privileges

    real = privileges.actual_role_settings(connections["owner"])
    assert real["search_path"] == "public, pg_temp"
    monkeypatch.setattr(privileges, "actual_role_settings", lambda c: {**real, "search_path": "pg_temp, public"})
    assert any("pg_temp last" in p for p in privilege_problems(connections["owner"]))
    monkeypatch.setattr(
        privileges, "actual_role_settings", lambda c: {k: v for k, v in real.items() if k != "search_path"}
    )
    assert any("lacks the role setting search_path" in p for p in privilege_problems(connections["owner"]))


@pytest.mark.slow
def test_migrate_on_an_empty_database_yields_the_set_and_reverses():
    """`migrate` alone gives the whole set; 0010 rolls back to the old grants and forward again."""
    with scratch_database("alphapulse_privileges") as name:
        manage(name, "migrate")
        with connect("owner", name) as owner:
            assert _table_privileges(owner, "django_session") == []
            assert _table_privileges(owner, "tenants") == ["SELECT"]
        manage(name, "migrate", "tenants", "0009_default_manager_all_tenants")
        with connect("owner", name) as owner:
            assert _table_privileges(owner, "tenants") == ["DELETE", "INSERT", "SELECT", "UPDATE"]
        manage(name, "migrate")
        with connect("owner", name) as owner:
            assert _table_privileges(owner, "tenants") == ["SELECT"]
            assert _table_privileges(owner, "trades") == ["DELETE", "INSERT", "SELECT", "UPDATE"]
        result = manage(name, "rls_check")
        assert "holds exactly its least-privilege set" in result.stdout


def _table_privileges(owner: psycopg.Connection, table: str) -> list[str]:
    rows = owner.execute(
        "SELECT p FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p "
        "WHERE has_table_privilege(%s, %s::regclass, p) ORDER BY 1",
        [APP_ROLE, table],
    ).fetchall()
    return [p for (p,) in rows]


def test_djangos_commands_read_the_migration_history_as_the_owner():
    """changepassword, createsuperuser and runserver check for unapplied migrations first;
    on the app role (no privilege on django_migrations) that was "permission denied"."""
    with pytest.raises(CommandError, match="does not exist"):
        call_command("changepassword", "nobody-at-all", stdout=StringIO())
    out = StringIO()
    call_command("showmigrations", "tenants", stdout=out)
    assert "[X] 0010_app_role_least_privilege" in out.getvalue()
