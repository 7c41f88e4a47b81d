"""The suite runs as the app role, and that role cannot get past RLS.

tests/conftest.py refuses to run at all otherwise; these tests state each
guarantee by name, and that the system check would catch a bad role.
"""

import pytest
from django.db import connection

from tenants.catalog.checks import check_runtime_role_cannot_bypass_rls, runtime_role_problems
from tenants.constants import APP_ROLE, BYPASS_ROLE, OWNER_ROLE
from tenants.registry import tenant_tables

TENANT_TABLES = tenant_tables()

pytestmark = pytest.mark.django_db


def one(query: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()


def test_tests_query_as_the_app_role():
    assert one("SELECT current_user") == (APP_ROLE,)


def test_app_role_is_not_superuser_and_has_no_bypassrls_or_createdb():
    assert one(
        "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
    ) == (
        False,
        False,
        False,
        False,
    )


def test_app_role_is_not_in_the_bypass_role():
    assert one("SELECT pg_has_role(current_user, %s, 'MEMBER')", [BYPASS_ROLE]) == (False,)


def test_app_role_owns_no_table_and_the_owner_owns_every_tenant_table():
    owners = one(
        "SELECT array_agg(DISTINCT pg_get_userbyid(relowner)) FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r'",
        [list(TENANT_TABLES)],
    )
    assert owners == ([OWNER_ROLE],)
    assert one("SELECT count(*) FROM pg_class WHERE relowner = 'alphapulse_app'::regrole") == (0,)


def test_app_role_holds_no_truncate_on_any_table():
    assert one(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'r' AND has_table_privilege(current_user, c.oid, 'TRUNCATE')"
    ) == (0,)


def test_system_check_passes_for_the_app_role(settings):
    assert check_runtime_role_cannot_bypass_rls(databases=["default"]) == []


@pytest.mark.django_db(databases=["default", "owner"])
def test_role_check_flags_the_owner_connection():
    """Pointed at the owner (DATABASE_URL misconfigured), the check finds every way past RLS."""
    problems = runtime_role_problems("owner")
    assert any("owns tenant tables" in p for p in problems)
    assert any(f"member of {BYPASS_ROLE} while RLS_ENABLED is true" in p for p in problems)
