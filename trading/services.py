"""The trading rules, each in one place: an order's terms, its status moves, what may
change once it is working, its deletion, and one position per user and symbol.

Serializers (validate) and views (perform_update, perform_destroy) call
these and hold no rule of their own. Errors are DRF ValidationErrors (400) or
OrderNotDeletable (409), with messages that say what is allowed. Who may
call which (an admin amends trades, a trader changes only their own new
orders) is the access table's, tenants/access.py; what a change leaves in
the tenant's audit log is recorded here, in the change's own transaction.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError

from tenants.access import EXECUTION_STATUSES
from tenants.context import require_tenant_id
from tenants.tenant_audit import record_event
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


class OrderNotDeletable(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "order_not_deletable"


def order_check_deletable(order: Order) -> None:
    """Only a `new` order may be deleted; a working or finished one is cancelled, or kept as a record."""
    if order.status != OrderStatus.NEW:
        raise OrderNotDeletable(
            f"An order that is {order.status} cannot be deleted"
            + (": cancel it instead." if ORDER_TRANSITIONS[order.status] else ": it is a record of what happened.")
        )


def agent_signals_create_bulk(items: object, user, serializer_class) -> list[AgentSignal]:
    """Validate every signal first, then insert them all in one statement (or none).

    `items` is the request body: a JSON list of 1..AGENT_SIGNALS_BULK_MAX
    signals. Any invalid item fails the whole request with a 400 that names
    the bad items by their index in the list. One multi-row INSERT
    (bulk_create), which is also what a Citus coordinator accepts under RLS.
    """
    limit = settings.AGENT_SIGNALS_BULK_MAX
    if not isinstance(items, list):
        raise ValidationError({"detail": "Send a JSON list of agent signals."})
    if not 1 <= len(items) <= limit:
        raise ValidationError({"detail": f"Send between 1 and {limit} agent signals per request, not {len(items)}."})
    checked = [serializer_class(data=item) for item in items]
    errors = {str(i): s.errors for i, s in enumerate(checked) if not s.is_valid()}
    if errors:
        raise ValidationError(
            {
                "detail": f"{len(errors)} of {len(items)} agent signals are invalid "
                f"({'item' if len(errors) == 1 else 'items'} {', '.join(errors)}); none was saved.",
                "errors": errors,
            }
        )
    tenant_id = require_tenant_id()
    signals = [AgentSignal(tenant_id=tenant_id, user=user, **s.validated_data) for s in checked]
    return AgentSignal.objects.bulk_create(signals)


# -- changes that leave a trace in the tenant's audit log ------------------------------

TRADE_FIELDS = ("user_id", "symbol", "side", "quantity", "price", "executed_at")


def trade_record(trade: Trade) -> dict[str, str]:
    """A trade as the audit log keeps it: every booked field, as text (exact decimals)."""
    return {field: str(getattr(trade, field)) for field in TRADE_FIELDS}


def trade_amend(trade: Trade, changes: dict, *, actor: str) -> Trade:
    """Amend an executed trade (an admin's correction), recorded as `trade.changed` with before and after."""
    before = trade_record(trade)
    for field, value in changes.items():
        setattr(trade, field, value)
    trade.save()
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
