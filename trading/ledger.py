"""The position rules (weighted average cost), as pure arithmetic: no database here.

A position is the signed sum of its trades (a buy adds, a sell subtracts);
`average_price` is the weighted average cost of the open quantity:
- a trade on the position's side (or on a flat position) averages in:
  (|q| * avg + qty * price) / |q + signed qty|;
- a reducing trade keeps the average; a trade that closes the position
  exactly leaves it flat with average 0;
- a trade that crosses zero opens the remainder at its own price.
Averages are rounded to 8 places (half away from zero) after each trade,
exactly as the SQL of trading.positions does it, so a position moved one trade
at a time and one rebuilt from all its trades (rebuild_positions) agree to
the last digit. Trades apply in booking order: created_at, then id.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

PLACES = Decimal("0.00000001")
ZERO = Decimal(0)


def signed(side: str, quantity: Decimal) -> Decimal:
    """A buy adds to the position, a sell subtracts."""
    return quantity if side == "buy" else -quantity


def apply_trade(quantity: Decimal, average: Decimal, delta: Decimal, price: Decimal) -> tuple[Decimal, Decimal]:
    """(quantity, average_price) after one trade of signed quantity `delta` at `price`."""
    after = quantity + delta
    if after == 0:
        return ZERO, ZERO
    if quantity == 0 or (quantity > 0) == (delta > 0):
        cost = abs(quantity) * average + abs(delta) * price
        return after, (cost / abs(after)).quantize(PLACES, rounding=ROUND_HALF_UP)
    if abs(delta) < abs(quantity):
        return after, average
    return after, price


def fold(trades: Iterable[tuple[str, Decimal, Decimal]]) -> tuple[Decimal, Decimal]:
    """(quantity, average_price) of a position from its trades (side, quantity, price), in booking order."""
    quantity, average = ZERO, ZERO
    for side, qty, price in trades:
        quantity, average = apply_trade(quantity, average, signed(side, qty), price)
    return quantity, average
