"""The trading rules, each in one place: an order's terms, its status moves, what may
change once it is working, its deletion, and one position per user and symbol.

Serializers (validate) and views (perform_destroy) call these and hold no
rule of their own. Errors are DRF ValidationErrors (400) or
OrderNotDeletable (409), with messages that say what is allowed.
"""

from __future__ import annotations

from decimal import Decimal

from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError

from trading.models import Order, OrderStatus, OrderType, Position

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


def position_check_unique(user: object, symbol: str | None, *, instance: Position | None = None) -> None:
    """One position per (tenant, user, symbol). The tenant and user are not
    serializer fields, so DRF's UniqueTogetherValidator cannot see this one."""
    clash = Position.objects.filter(user=user, symbol=symbol)
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
