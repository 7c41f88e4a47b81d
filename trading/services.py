"""The trading rules, each in one place: an order's terms, its status moves, what may
change once it is working, its deletion, and one position per user and symbol.

Serializers (validate) and views (perform_update, perform_destroy) call these and hold no
rule of their own. The rules know nothing of HTTP: a refusal is a domain
error, Django's ValidationError (by field) or OrderNotDeletable, with a
message that says what is allowed; the API layer maps them to 400 (DRF's
serializer validation and alphapulse.exceptions) and 409 (trading.views). Who may
call which (an admin amends trades, a trader changes only their own new
orders) is the access table's, tenants/access.py; what a change leaves in
the tenant's audit log is recorded here, in the change's own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.core.exceptions import ValidationError

from tenants.access import EXECUTION_STATUSES
from tenants.context import require_tenant_id
from tenants.database.bulk import bulk_insert
from tenants.tenant_audit import record_event
from trading import positions
from trading.models import AgentSignal, Order, OrderStatus, OrderType, Position, Trade

# Which status an order may move to from each status. Final states map to nothing.
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.NEW: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED}
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED}),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}


def order_check_terms(order_type: str | None, limit_price: Decimal | None) -> None:
    """A limit order has a limit price; a market order has none."""
    if order_type == OrderType.LIMIT and limit_price is None:
        raise ValidationError({"limit_price": ["A limit order needs a limit_price."]})
    if order_type == OrderType.MARKET and limit_price is not None:
        raise ValidationError({"limit_price": ["A market order has no limit_price: send null."]})


def order_check_new(status: str) -> None:
    if status != OrderStatus.NEW:
        raise ValidationError({"status": ["A new order starts as 'new'."]})


def order_check_change(order: Order, changes: dict) -> None:
    """A status move must be allowed; once working (or done) only the status moves:
    its terms are what the market saw."""
    if "status" in changes:
        order_check_transition(order, changes["status"])
    if order.status != OrderStatus.NEW and set(changes) - {"status"}:
        raise ValidationError({"non_field_errors": [f"An order that is {order.status} can only change its status."]})


def position_check_unique(user_id: object, symbol: str | None, *, instance: Position | None = None) -> None:
    """One position per (tenant, user, symbol). The tenant and user are not
    serializer fields, so DRF's UniqueTogetherValidator cannot see this one.
    By the user's id: the scoped manager adds the tenant, so the check routes."""
    clash = Position.objects.filter(user_id=user_id, symbol=symbol)
    if instance is not None:
        clash = clash.exclude(pk=instance.pk)
    if clash.exists():
        raise ValidationError({"symbol": [f"A position in {symbol} already exists for this user."]})


def order_check_transition(order: Order, new_status: str) -> None:
    """Raise unless `order` may move from its current status to `new_status`."""
    if new_status == order.status:
        return
    allowed = ORDER_TRANSITIONS[order.status]
    if new_status not in allowed:
        if not allowed:
            raise ValidationError(
                {"status": [f"Order is {order.status}: that is final, it cannot become {new_status}."]}
            )
        raise ValidationError(
            {"status": [f"An order that is {order.status} can become {', '.join(sorted(allowed))}, not {new_status}."]}
        )


class OrderNotDeletable(Exception):
    """Only a `new` order may be deleted; the message says what to do instead."""


def order_check_deletable(order: Order) -> None:
    """Only a `new` order may be deleted; a working or finished one is cancelled, or kept as a record."""
    if order.status != OrderStatus.NEW:
        raise OrderNotDeletable(
            f"An order that is {order.status} cannot be deleted"
            + (": cancel it instead." if ORDER_TRANSITIONS[order.status] else ": it is a record of what happened.")
        )


def agent_signals_create_bulk(signals: Iterable[dict], user) -> list[AgentSignal]:
    """Insert validated signals of `user`, in the current tenant, all in one statement (or none).

    One multi-row INSERT ... VALUES (tenants.database.bulk.bulk_insert): Django's own
    bulk_create writes INSERT ... SELECT FROM UNNEST, which a Citus coordinator runs as
    a COPY and refuses under row-level security; VALUES it routes by shard.
    """
    tenant_id = require_tenant_id()
    return bulk_insert(
        AgentSignal.objects.all(), [AgentSignal(tenant_id=tenant_id, user=user, **data) for data in signals]
    )


# -- changes that leave a trace in the tenant's audit log ------------------------------

TRADE_FIELDS = ("user_id", "symbol", "side", "quantity", "price", "executed_at")


def trade_record(trade: Trade) -> dict[str, str]:
    """A trade as the audit log keeps it: every booked field, as text (exact decimals)."""
    return {field: str(getattr(trade, field)) for field in TRADE_FIELDS}


def trade_amend(trade: Trade, changes: dict, *, actor: str) -> Trade:
    """Amend an executed trade (an admin's correction), recorded as `trade.changed` with before and after.

    The position it moved is recomputed from its trades (and the position of
    the new symbol, if the amendment moved the trade to another one)."""
    before = trade_record(trade)
    old_symbol = trade.symbol
    for field, value in changes.items():
        setattr(trade, field, value)
    trade.save()
    positions.recompute(trade.user_id, trade.symbol)
    if old_symbol != trade.symbol:
        positions.recompute(trade.user_id, old_symbol)
    record_event(
        "trade.changed",
        actor=actor,
        target_type="trade",
        target_id=str(trade.pk),
        details={"before": before, "after": trade_record(trade)},
    )
    return trade


def trade_delete(trade: Trade, *, actor: str) -> None:
    """Delete an executed trade, recorded as `trade.deleted` with what it was."""
    before, trade_id = trade_record(trade), str(trade.pk)
    trade.delete()
    positions.recompute(trade.user_id, trade.symbol)
    record_event(
        "trade.deleted", actor=actor, target_type="trade", target_id=trade_id, details={"before": before, "after": None}
    )


def order_change(order: Order, changes: dict, *, actor: str) -> Order:
    """Change an order (its terms, a cancel, or an admin's execution).

    The rules of the change itself were checked by order_check_change (the
    serializer's validate); moving it to an execution status is recorded as
    `order.executed` (who may do that: tenants/access.py, `execute`).
    """
    status_before = order.status
    for field, value in changes.items():
        setattr(order, field, value)
    order.save()
    if order.status != status_before and order.status in EXECUTION_STATUSES:
        record_event(
            "order.executed",
            actor=actor,
            target_type="order",
            target_id=str(order.pk),
            details={"before": {"status": status_before}, "after": {"status": order.status}},
        )
    return order
