"""factory-boy factories. Tenant rows are written as their tenant, through the app
role and RLS: each factory enters tenant_context(tenant) around the insert."""

from __future__ import annotations

from decimal import Decimal

import factory

from tenants.context import tenant_context
from tenants.models import Tenant, User
from trading import models as trading


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Firm {n}")
    slug = factory.Sequence(lambda n: f"firm-{n}")
    subscription_tier = Tenant.Tier.PRO


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


FACTORY_BY_TABLE = {
    "trades": TradeFactory,
    "orders": OrderFactory,
    "positions": PositionFactory,
    "portfolio_snapshots": PortfolioSnapshotFactory,
    "risk_metrics": RiskMetricFactory,
    "agent_signals": AgentSignalFactory,
}
