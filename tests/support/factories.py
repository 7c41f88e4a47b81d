"""factory-boy factories. Tenant rows are written as their tenant, through the app
role and RLS: each factory enters tenant_context(tenant) around the insert.

`tenants` rows are the exception: the app role may only read them, so
TenantFactory writes them as the owner on a connection of its own and
commits (the app connection could not see an uncommitted row of another
connection). `write_tenant()` changes one the same way. The tests'
conftest removes every tenant written so at the start of the next test, once
the previous test's transaction (and its row locks) are gone."""

from __future__ import annotations

import uuid
from decimal import Decimal

import factory
from django.db import connections
from psycopg import sql

from tenants.context import tenant_context
from tenants.models import ApiKey, Tenant, User, UserSession
from tenants.roles import Role
from trading import models as trading


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Firm {n}")
    slug = factory.Sequence(lambda n: f"firm-{n}")
    subscription_tier = Tenant.Tier.PRO

    @classmethod
    def _get_or_create(cls, model_class, *args, **kwargs):
        return cls._create(model_class, *args, **kwargs)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        fields = {
            "id": kwargs.get("id") or uuid.uuid4(),
            "name": kwargs.get("name", kwargs["slug"]),
            "slug": kwargs["slug"],
            "subscription_tier": kwargs.get("subscription_tier", Tenant.Tier.PRO),
            "status": kwargs.get("status", Tenant.Status.ACTIVE),
        }
        with owner_connection() as owner:
            (tenant_id,) = (
                owner.execute(
                    "INSERT INTO tenants (id, name, slug, subscription_tier, status, created_at, updated_at) "
                    "VALUES (%(id)s, %(name)s, %(slug)s, %(subscription_tier)s, %(status)s, now(), now()) "
                    "ON CONFLICT (slug) DO NOTHING RETURNING id",
                    {k: str(v) for k, v in fields.items()},
                ).fetchone()
                or owner.execute("SELECT id FROM tenants WHERE slug = %s", [fields["slug"]]).fetchone()
            )
        COMMITTED_TENANTS.add(tenant_id)
        return model_class.objects.get(pk=tenant_id)


# Tenants TenantFactory committed; deleted at the start of the next test.
COMMITTED_TENANTS: set[uuid.UUID] = set()


def owner_connection():
    from tests.support.scratch import connect

    return connect("owner", connections["owner"].settings_dict["NAME"])


def write_tenant(tenant: Tenant, **fields: object) -> None:
    """UPDATE tenants as the owner, committed (the app role cannot)."""
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in fields)
    with owner_connection() as owner:
        owner.execute(
            sql.SQL("UPDATE tenants SET {} WHERE id = %s").format(assignments),
            [*(str(v) for v in fields.values()), tenant.pk],
        )


def delete_committed_tenants() -> None:
    if not COMMITTED_TENANTS:
        return
    with owner_connection() as owner:
        # As the bypass holder: the cascade reaches rows other tests committed (live servers do not share this DB).
        owner.execute("DELETE FROM tenants WHERE id = ANY(%s)", [list(COMMITTED_TENANTS)])
    COMMITTED_TENANTS.clear()


class TenantRowFactory(factory.django.DjangoModelFactory):
    """Creates the row inside its tenant's context (RLS insert policy holds)."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        tenant = kwargs.get("tenant") or kwargs["user"].tenant
        kwargs["tenant"] = tenant
        with tenant_context(tenant):
            obj = model_class(*args, **kwargs)
            cls._before_save(obj)
            obj.save()
        return obj

    @classmethod
    def _before_save(cls, obj) -> None:
        pass


class UserFactory(TenantRowFactory):
    class Meta:
        model = User

    tenant = factory.SubFactory(TenantFactory)
    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = "correct-horse-battery-staple"
    # Admins by default, as every user became on the upgrade to roles: suites
    # about isolation act with every right; the role suites pass role=.
    role = Role.ADMIN

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        raw_password = kwargs.pop("password")
        kwargs["password"] = ""
        user = super()._create(model_class, *args, **kwargs)
        user.set_password(raw_password)
        with tenant_context(user.tenant):
            user.save(update_fields=["password"])
        return user


class TradingRowFactory(TenantRowFactory):
    class Meta:
        abstract = True

    user = factory.SubFactory(UserFactory)
    tenant = factory.LazyAttribute(lambda o: o.user.tenant)


class TradeFactory(TradingRowFactory):
    class Meta:
        model = trading.Trade

    symbol = factory.Iterator(["AAPL", "MSFT", "BTC-USD", "ETH-USD", "TSLA"])
    side = factory.Iterator(["buy", "sell"])
    quantity = Decimal("10")
    price = Decimal("101.25")


class OrderFactory(TradingRowFactory):
    class Meta:
        model = trading.Order

    symbol = "AAPL"
    side = "buy"
    order_type = "limit"
    quantity = Decimal("5")
    limit_price = Decimal("99.50")


class PositionFactory(TradingRowFactory):
    class Meta:
        model = trading.Position

    symbol = factory.Sequence(lambda n: f"SYM{n}")
    quantity = Decimal("100")
    average_price = Decimal("42.10")


class PortfolioSnapshotFactory(TradingRowFactory):
    class Meta:
        model = trading.PortfolioSnapshot

    total_value = Decimal("1000000.00")
    cash = Decimal("250000.00")
    positions_value = Decimal("750000.00")


class RiskMetricFactory(TradingRowFactory):
    class Meta:
        model = trading.RiskMetric

    metric = "var_95"
    value = Decimal("0.0315")


class AgentSignalFactory(TradingRowFactory):
    class Meta:
        model = trading.AgentSignal

    agent_name = "momentum-v2"
    symbol = "AAPL"
    signal = "buy"
    confidence = Decimal("0.8125")


class UserSessionFactory(TradingRowFactory):
    class Meta:
        model = UserSession

    refresh_jti = factory.LazyFunction(lambda: uuid.uuid4().hex)


class ApiKeyFactory(TradingRowFactory):
    """A key row (its secret unknown: for RLS and routing tests; the API tests make real keys)."""

    class Meta:
        model = ApiKey

    name = "bot"
    prefix = factory.LazyFunction(lambda: uuid.uuid4().hex[:12])
    hashed_secret = "0" * 64
    scopes = factory.LazyFunction(lambda: ["read"])


# The tenant tables of the sessions and keys: rows end (UPDATE), the app role deletes none.
SESSION_FACTORY_BY_TABLE = {"user_sessions": UserSessionFactory, "api_keys": ApiKeyFactory}

FACTORY_BY_TABLE = {
    "trades": TradeFactory,
    "orders": OrderFactory,
    "positions": PositionFactory,
    "portfolio_snapshots": PortfolioSnapshotFactory,
    "risk_metrics": RiskMetricFactory,
    "agent_signals": AgentSignalFactory,
}
