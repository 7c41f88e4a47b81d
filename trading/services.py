"""Domain rules that span more than one field: order status transitions and deletion.

Serializers call these; views stay declarative. Errors are DRF
ValidationErrors with messages that say what is allowed.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError

from trading.models import Order, OrderStatus

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
