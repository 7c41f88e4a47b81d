"""The six domain tables. Every one is a TenantModel under forced RLS.

Each row belongs to a user of its own tenant. The database enforces that with
a composite key (tenant_id, user_id) -> users(tenant_id, id), written by
tenants.catalog.retrofit_operations.ReplaceUserForeignKey: a plain user_id key would be checked
past RLS and let tenant A reference (and so probe) tenant B's users.
"""

import uuid
from typing import TypedDict

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import TenantModel, tenant_indexes


class DecimalSpec(TypedDict):
    max_digits: int
    decimal_places: int


# Quantities and prices: 20 digits, 8 after the point (crypto-grade lots).
QUANTITY: DecimalSpec = {"max_digits": 20, "decimal_places": 8}
MONEY: DecimalSpec = {"max_digits": 24, "decimal_places": 2}


class Side(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderType(models.TextChoices):
    MARKET = "market", "Market"
    LIMIT = "limit", "Limit"


class OrderStatus(models.TextChoices):
    NEW = "new", "New"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"


class Metric(models.TextChoices):
    VAR_95 = "var_95", "Value at risk (95%)"
    VAR_99 = "var_99", "Value at risk (99%)"
    SHARPE = "sharpe", "Sharpe ratio"
    MAX_DRAWDOWN = "max_drawdown", "Maximum drawdown"
    VOLATILITY = "volatility", "Volatility"
    BETA = "beta", "Beta"


class Signal(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"
    HOLD = "hold", "Hold"


def _in(field: str, choices: type[models.TextChoices]) -> Q:
    return Q(**{f"{field}__in": choices.values})


class TradingModel(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        db_constraint=False,  # the composite key is the real constraint
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["-created_at"]


class Trade(TradingModel):
    symbol = models.CharField(max_length=16)
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.DecimalField(**QUANTITY)
    price = models.DecimalField(**QUANTITY)
    executed_at = models.DateTimeField(default=timezone.now)
    # The order this trade filled (POST /api/orders/<id>/fills/), or None for a trade
    # booked directly. The database key is (tenant_id, order_id) -> orders(tenant_id, id),
    # written by trading 0008: a plain key would be checked past RLS.
    # DO_NOTHING: Django's PROTECT would look up trades by order_id alone (on Citus, every
    # shard); the composite key refuses the delete, and only a new (unfilled) order is deletable.
    order = models.ForeignKey(
        "trading.Order",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta(TradingModel.Meta):
        db_table = "trades"
        indexes = [
            *tenant_indexes("trades"),
            # An order's fills, and the check of the composite key to orders.
            models.Index(fields=["tenant", "order"], name="idx_trades_tenant_order", condition=Q(order__isnull=False)),
            # A page filtered by symbol, newest first: one range, whatever the tenant holds (trading/0010).
            models.Index(fields=["tenant", "symbol", "-created_at"], name="idx_trades_tenant_symbol"),
            # The trades of one (user, symbol) in booking order: a position's recomputation (trading.positions).
            models.Index(fields=["tenant", "user", "symbol", "created_at"], name="idx_trades_tenant_user_symbol"),
        ]
        constraints = [
            models.CheckConstraint(condition=_in("side", Side), name="trades_side_valid"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trades_quantity_positive"),
            models.CheckConstraint(condition=Q(price__gt=0), name="trades_price_positive"),
        ]


class Order(TradingModel):
    OrderType = OrderType

    Status = OrderStatus

    symbol = models.CharField(max_length=16)
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=6, choices=OrderType.choices)
    quantity = models.DecimalField(**QUANTITY)
    limit_price = models.DecimalField(**QUANTITY, null=True, blank=True)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.NEW)
    # Grown only by fills (trading.fills), never by a request body.
    filled_quantity = models.DecimalField(**QUANTITY, default=0, db_default=0, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TradingModel.Meta):
        db_table = "orders"
        indexes = tenant_indexes("orders")
        constraints = [
            models.CheckConstraint(condition=_in("side", Side), name="orders_side_valid"),
            models.CheckConstraint(condition=_in("order_type", OrderType), name="orders_type_valid"),
            models.CheckConstraint(condition=_in("status", OrderStatus), name="orders_status_valid"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orders_quantity_positive"),
            models.CheckConstraint(
                condition=(Q(order_type="limit", limit_price__gt=0) | Q(order_type="market", limit_price__isnull=True)),
                name="orders_limit_price_matches_type",
            ),
            models.CheckConstraint(
                condition=Q(filled_quantity__gte=0, filled_quantity__lte=models.F("quantity")),
                name="orders_filled_quantity_within_quantity",
            ),
            # The target of trades' composite (tenant_id, order_id) key.
            models.UniqueConstraint(fields=["tenant", "id"], name="orders_tenant_id_id_uniq"),
        ]


class Position(TradingModel):
    symbol = models.CharField(max_length=16)
    quantity = models.DecimalField(**QUANTITY)  # signed: negative is short
    average_price = models.DecimalField(**QUANTITY)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TradingModel.Meta):
        db_table = "positions"
        indexes = tenant_indexes("positions")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "user", "symbol"],
                name="positions_tenant_user_symbol_uniq",
            ),
            models.CheckConstraint(
                condition=Q(average_price__gte=0),
                name="positions_average_price_not_negative",
            ),
        ]


class PortfolioSnapshot(TradingModel):
    total_value = models.DecimalField(**MONEY)
    cash = models.DecimalField(**MONEY)
    positions_value = models.DecimalField(**MONEY)
    taken_at = models.DateTimeField(default=timezone.now)
    # True for the job's row; a row typed in through the API is False and never
    # blocks or replaces the job's row for its key (jobs.portfolio).
    computed = models.BooleanField(default=False, db_default=False, editable=False)

    class Meta(TradingModel.Meta):
        db_table = "portfolio_snapshots"
        indexes = tenant_indexes("snapshots")
        constraints = [
            # The natural key of the portfolio_snapshot job: a rerun writes nothing twice.
            models.UniqueConstraint(fields=["tenant", "user", "taken_at"], name="portfolio_snapshots_natural_key"),
        ]


class RiskMetric(TradingModel):
    Metric = Metric

    metric = models.CharField(max_length=16, choices=Metric.choices)
    value = models.DecimalField(**QUANTITY)
    window_days = models.PositiveSmallIntegerField(default=30)
    as_of = models.DateTimeField(default=timezone.now)
    # As PortfolioSnapshot.computed (jobs.risk).
    computed = models.BooleanField(default=False, db_default=False, editable=False)

    class Meta(TradingModel.Meta):
        db_table = "risk_metrics"
        indexes = tenant_indexes("risk")
        constraints = [
            models.CheckConstraint(condition=_in("metric", Metric), name="risk_metrics_metric_valid"),
            # The natural key of the risk_metrics job: a rerun writes nothing twice.
            models.UniqueConstraint(
                fields=["tenant", "user", "metric", "window_days", "as_of"], name="risk_metrics_natural_key"
            ),
        ]


class AgentSignal(TradingModel):
    Signal = Signal

    agent_name = models.CharField(max_length=64)
    symbol = models.CharField(max_length=16)
    signal = models.CharField(max_length=4, choices=Signal.choices)
    confidence = models.DecimalField(max_digits=5, decimal_places=4)
    rationale = models.TextField(blank=True, default="", max_length=2000)

    class Meta(TradingModel.Meta):
        db_table = "agent_signals"
        indexes = tenant_indexes("signals")
        constraints = [
            models.CheckConstraint(condition=_in("signal", Signal), name="agent_signals_signal_valid"),
            models.CheckConstraint(
                condition=Q(confidence__gte=0, confidence__lte=1),
                name="agent_signals_confidence_between_0_and_1",
            ),
        ]
