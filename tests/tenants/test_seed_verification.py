"""The seed's own verification queries (US-003, US-004, post-migration), run
verbatim against the migrated test database, as the app role."""

import pytest
from django.db import connection, transaction

from tenants.constants import DEFAULT_TENANT_ID, POLICY_NAMES
from tenants.models import Tenant
from tenants.registry import tenant_tables
from tests.support.factories import TradeFactory, UserFactory

TENANT_TABLES = tenant_tables()

pytestmark = pytest.mark.django_db


def fetch(query: str):
    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall() if cursor.description else None


def test_rls_enabled_on_every_tenant_table():
    rows = dict(fetch("SELECT tablename, rowsecurity FROM pg_tables WHERE schemaname = 'public';"))
    assert all(rows[table] for table in TENANT_TABLES)
    assert not rows["tenants"]


def test_every_tenant_table_has_the_seeds_policies():
    rows = fetch("SELECT schemaname, tablename, policyname FROM pg_policies WHERE schemaname = 'public';")
    for table in TENANT_TABLES:
        assert {p for _, t, p in rows if t == table} == set(POLICY_NAMES)


def test_tenant_id_is_not_nullable_anywhere():
    rows = fetch(
        "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'public' AND column_name = 'tenant_id';"
    )
    assert {t for t, _, _ in rows} == set(TENANT_TABLES)
    assert all(nullable == "NO" for _, _, nullable in rows)


def test_seed_rls_testing_block():
    user = UserFactory(tenant=Tenant.objects.get(pk=DEFAULT_TENANT_ID), username="legacy")
    TradeFactory(user=user)
    with transaction.atomic():
        fetch("SET LOCAL app.current_tenant_id = '00000000-0000-0000-0000-000000000001';")
        assert fetch("SELECT COUNT(*) FROM users;") == [(1,)]
        assert fetch("SELECT COUNT(*) FROM trades;") == [(1,)]
        fetch("SET LOCAL app.current_tenant_id = '00000000-0000-0000-0000-000000000002';")
        assert fetch("SELECT COUNT(*) FROM users WHERE tenant_id = '00000000-0000-0000-0000-000000000001';") == [(0,)]


def test_no_orphans():
    assert fetch("SELECT COUNT(*) FROM trades WHERE tenant_id NOT IN (SELECT id FROM tenants);") == [(0,)]
    assert fetch("SELECT COUNT(*) FROM users WHERE tenant_id NOT IN (SELECT id FROM tenants);") == [(0,)]
