"""Filling an order: the order grows, a trade is booked, the position moves, in one transaction.

Two statements, both filtered by the tenant (so on a Citus coordinator each
routes to the tenant's shard and the fill stays a single-node transaction):

1. one conditional UPDATE of the order that adds the fill to
   `filled_quantity` and moves its status, only WHERE the order is new or
   partially filled, the fill fits its remaining quantity and respects its
   limit price. Concurrent fills of one order queue on its row lock and each
   re-checks that condition against the committed figures (PostgreSQL's
   READ COMMITTED re-evaluation): they can never overfill it.
2. trading.positions.book_trade: the trade (with `order_id`) and the position
   upsert, one statement.

When the UPDATE matches no row, a read says why (404 or 409) and nothing was written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone
from psycopg import sql

from tenants.context import require_tenant_id
from tenants.tenant_audit import record_event
from trading.models import Order, OrderStatus, Position, Trade
from trading.positions import book_trade

FILLABLE = (OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value)
ORDER_COLUMNS = tuple(field.column for field in Order._meta.concrete_fields)

FILL_ORDER_SQL = (
    sql.SQL(
        "UPDATE orders SET filled_quantity = filled_quantity + %(qty)s, "
        "status = CASE WHEN filled_quantity + %(qty)s = quantity THEN %(filled)s ELSE %(partial)s END, "
        "updated_at = %(now)s "
        "WHERE tenant_id = %(tenant)s AND id = %(order)s AND status = ANY(%(fillable)s) "
        "AND filled_quantity + %(qty)s <= quantity "
        "AND (limit_price IS NULL OR (side = 'buy' AND %(price)s <= limit_price) "
        "OR (side = 'sell' AND %(price)s >= limit_price)) "
        "RETURNING {}"
    )
    .format(sql.SQL(", ").join(map(sql.Identifier, ORDER_COLUMNS)))
    .as_string(None)
)


class FillRefused(Exception):
    """The order cannot take this fill (closed, too large, beyond its limit): 409, nothing written."""


class OrderNotFound(Exception):
    """No such order in the tenant: 404."""


@dataclass(frozen=True)
class Fill:
    trade: Trade
    order: Order
    position: Position


def fill_order(order_id: uuid.UUID, quantity: Decimal, price: Decimal, executed_at: Any = None, *, actor: str) -> Fill:
    tenant_id = require_tenant_id()
    params: dict[str, Any] = {
        "qty": quantity,
        "price": price,
        "now": timezone.now(),
        "tenant": tenant_id,
        "order": order_id,
        "fillable": list(FILLABLE),
        "filled": OrderStatus.FILLED.value,
        "partial": OrderStatus.PARTIALLY_FILLED.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(FILL_ORDER_SQL, params)
        row = cursor.fetchone()
    if row is None:
        raise _why_not(order_id, quantity, price)
    order = Order.from_db("default", [f.attname for f in Order._meta.concrete_fields], list(row))
    booked = book_trade(
        user_id=order.user_id,
        symbol=order.symbol,
        side=order.side,
        quantity=quantity,
        price=price,
        executed_at=executed_at,
        order_id=order.pk,
    )
    record_event(
        "order.filled",
        actor=actor,
        target_type="order",
        target_id=str(order.pk),
        details={
            "trade": str(booked.trade.pk),
            "quantity": str(quantity),
            "price": str(price),
            "filled_quantity": str(order.filled_quantity),
            "status": order.status,
        },
    )
    return Fill(trade=booked.trade, order=order, position=booked.position)


def _why_not(order_id: uuid.UUID, quantity: Decimal, price: Decimal) -> Exception:
    """The reason a fill's UPDATE matched nothing, read after it (the order as it is now)."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return OrderNotFound("No Order matches the given query.")
    if order.status not in FILLABLE:
        return FillRefused(f"Order is {order.status}: only a new or partially_filled order can be filled.")
    remaining = order.quantity - order.filled_quantity
    if quantity > remaining:
        return FillRefused(
            f"A fill of {quantity} exceeds the order's remaining quantity {remaining.normalize():f} "
            f"({order.filled_quantity.normalize():f} of {order.quantity.normalize():f} filled)."
        )
    side_rule = "at or below" if order.side == "buy" else "at or above"
    return FillRefused(
        f"A {order.side} limit order fills {side_rule} its limit price {order.limit_price}, not {price}."
    )
