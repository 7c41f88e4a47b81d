"""US-001 and the tenant-scoped ORM (the layer that holds with RLS bypassed)."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants.constants import DEFAULT_TENANT_ID
from tenants.context import NoTenantContext, tenant_context
from tenants.models import CrossTenantWrite, Tenant, User
from tests.support.factories import TenantFactory, TradeFactory
from trading.models import Trade

pytestmark = pytest.mark.django_db


def test_default_tenant_exists_as_the_seed_defines_it():
    tenant = Tenant.objects.get(pk=DEFAULT_TENANT_ID)
    assert (tenant.slug, tenant.name, tenant.subscription_tier, tenant.status) == (
        "default",
        "Default Tenant",
        "pro",
        "active",
    )


# Tenants are platform data: only the owner writes them (the app role may read).
@pytest.mark.django_db(databases=["default", "owner"])
def test_tenant_slug_is_unique():
    TenantFactory(slug="acme")
    with pytest.raises(IntegrityError), transaction.atomic(using="owner"):
        Tenant.objects.using("owner").create(slug="acme", name="Other")


@pytest.mark.django_db(databases=["default", "owner"])
def test_tenant_status_is_checked_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic(using="owner"):
        Tenant.objects.using("owner").create(slug="odd", name="Odd", status="deleted")


def test_scoped_manager_raises_without_a_tenant_context():
    with pytest.raises(NoTenantContext):
        list(Trade.objects.all())
    with pytest.raises(NoTenantContext):
        User.objects.count()


def test_scoped_manager_filters_by_the_current_tenant(user_a, user_b):
    TradeFactory(user=user_a)
    TradeFactory(user=user_b)
    with tenant_context(user_a.tenant):
        assert [t.tenant_id for t in Trade.objects.all()] == [user_a.tenant_id]


def test_save_fills_the_tenant_from_the_context(user_a):
    with tenant_context(user_a.tenant):
        trade = Trade(user=user_a, symbol="AAPL", side="buy", quantity=1, price=1)
        trade.save()
    assert trade.tenant_id == user_a.tenant_id


def test_saving_another_tenants_row_raises(user_a, tenant_b):
    trade = TradeFactory(user=user_a)
    with tenant_context(tenant_b), pytest.raises(CrossTenantWrite):
        trade.save()


def test_saving_without_context_or_tenant_raises(user_a):
    with pytest.raises(NoTenantContext):
        Trade(user=user_a, symbol="AAPL", side="buy", quantity=1, price=1).save()


@pytest.mark.django_db(databases=["default", "owner"])
def test_deleting_a_tenant_cascades_to_its_rows():
    """ON DELETE CASCADE in the database (Django 5.2 cannot declare it itself).
    Platform work: the app role may not delete tenants, so the owner does it all."""
    tenant = TenantFactory(slug="doomed")
    user = User.all_tenants.db_manager("owner").create(tenant=tenant, username="gone", password="")
    Trade.all_tenants.db_manager("owner").create(
        tenant=tenant, user=user, symbol="AAPL", side="buy", quantity=1, price=1, executed_at=timezone.now()
    )
    Tenant.objects.filter(pk=tenant.pk)._raw_delete("owner")
    assert Trade.all_tenants.using("owner").filter(tenant_id=tenant.pk).count() == 0
    assert User.all_tenants.using("owner").filter(tenant_id=tenant.pk).count() == 0


@pytest.mark.django_db(databases=["default", "owner"])
def test_domain_tables_reference_users_only_through_the_composite_key():
    """A plain user_id -> users(id) key would be checked past RLS: tenant A could
    reference B's users and learn which ids exist from the constraint that fails."""
    from django.db import connections

    from tenants.registry import tenant_tables

    # The audit log names its actor by a label (events outlive users), an idempotency key its
    # principal (a user or an API key): no key to users.
    DOMAIN_TABLES = [t for t in tenant_tables() if t not in ("users", "audit_events", "idempotency_keys")]

    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, array_agg(cardinality(conkey) ORDER BY conname) "
            "FROM pg_constraint WHERE contype = 'f' AND confrelid = 'users'::regclass GROUP BY 1"
        )
        keys = dict(cursor.fetchall())
    assert {table: keys.get(table) for table in DOMAIN_TABLES} == {table: [2] for table in DOMAIN_TABLES}
