"""Positions recomputed from trades, one tenant at a time: the data migration (trading 0009),
`rebuild_positions` and `tenant_integrity` share this.

Raw SQL on a connection given by the caller, inside a transaction in which
the caller has set the tenant (tenant_context on the app connection, or the
migration's SET LOCAL on the owner's): every statement also filters by
tenant_id, so on Citus each routes to the tenant's shard.

What a rebuild does with a stored position that differs from its trades: it
is rewritten to the trades' figures; a position that no trade explains at all
(typed in by hand before positions followed trades) is deleted. Either way
the tenant's audit log keeps it: one `position.rebuilt` event per change, with
`before` and `after` (null when deleted), readable by the tenant's admin at
GET /api/audit-events/?action=position.rebuilt and printed by the command.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from trading import ledger

Key = tuple[uuid.UUID, str]  # (user_id, symbol)
Figures = tuple[Decimal, Decimal]  # (quantity, average_price)

TRADES_SQL = (
    "SELECT user_id, symbol, side, quantity, price FROM trades WHERE tenant_id = %s "
    "ORDER BY user_id, symbol, created_at, id"
)
POSITIONS_SQL = "SELECT user_id, symbol, quantity, average_price FROM positions WHERE tenant_id = %s"
UPSERT_SQL = (
    "INSERT INTO positions (id, tenant_id, user_id, symbol, quantity, average_price, created_at, updated_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, user_id, symbol) DO UPDATE SET "
    "quantity = EXCLUDED.quantity, average_price = EXCLUDED.average_price, updated_at = EXCLUDED.updated_at"
)
DELETE_SQL = "DELETE FROM positions WHERE tenant_id = %s AND user_id = %s AND symbol = %s"
EVENT_SQL = (
    "INSERT INTO audit_events (id, tenant_id, action, actor, target_type, target_id, details, created_at) "
    "VALUES (%s, %s, 'position.rebuilt', %s, 'position', %s, %s::jsonb, %s)"
)
BATCH = 5000


@dataclass(frozen=True)
class Difference:
    user_id: uuid.UUID
    symbol: str
    stored: Figures | None  # None: no position row
    computed: Figures | None  # None: no trade explains it

    def describe(self) -> str:
        def show(figures: Figures | None) -> str:
            return "none" if figures is None else f"{figures[0].normalize():f} @ {figures[1].normalize():f}"

        return f"user {self.user_id} {self.symbol}: stored {show(self.stored)}, trades say {show(self.computed)}"


def _rows(cursor: Any) -> Iterator[tuple]:
    while rows := cursor.fetchmany(BATCH):
        yield from rows


def computed_positions(cursor: Any, tenant_id: uuid.UUID) -> dict[Key, Figures]:
    """Every (user, symbol) with trades, folded in booking order (trading.ledger)."""
    result: dict[Key, Figures] = {}
    cursor.execute(TRADES_SQL, [tenant_id])
    key: Key | None = None
    quantity, average = ledger.ZERO, ledger.ZERO
    for user_id, symbol, side, qty, price in _rows(cursor):
        if (user_id, symbol) != key:
            if key is not None:
                result[key] = (quantity, average)
            key, quantity, average = (user_id, symbol), ledger.ZERO, ledger.ZERO
        quantity, average = ledger.apply_trade(quantity, average, ledger.signed(side, qty), price)
    if key is not None:
        result[key] = (quantity, average)
    return result


def stored_positions(cursor: Any, tenant_id: uuid.UUID) -> dict[Key, Figures]:
    cursor.execute(POSITIONS_SQL, [tenant_id])
    return {(user_id, symbol): (qty, avg) for user_id, symbol, qty, avg in _rows(cursor)}


def differences(cursor: Any, tenant_id: uuid.UUID) -> list[Difference]:
    """Positions that are not what their trades sum to, in (user, symbol) order."""
    computed, stored = computed_positions(cursor, tenant_id), stored_positions(cursor, tenant_id)
    return [
        Difference(key[0], key[1], stored.get(key), computed.get(key))
        for key in sorted(computed.keys() | stored.keys(), key=lambda k: (str(k[0]), k[1]))
        if computed.get(key) != stored.get(key)
    ]


def _figures(figures: Figures | None) -> dict[str, str] | None:
    return None if figures is None else {"quantity": str(figures[0]), "average_price": str(figures[1])}


def apply(cursor: Any, tenant_id: uuid.UUID, found: list[Difference], *, actor: str) -> None:
    """Write the trades' figures over each difference and record each in the tenant's audit log."""
    now = timezone.now()
    for diff in found:
        if diff.computed is None:
            cursor.execute(DELETE_SQL, [tenant_id, diff.user_id, diff.symbol])
        else:
            cursor.execute(UPSERT_SQL, [uuid.uuid4(), tenant_id, diff.user_id, diff.symbol, *diff.computed, now, now])
        details = {
            "user": str(diff.user_id),
            "symbol": diff.symbol,
            "before": _figures(diff.stored),
            "after": _figures(diff.computed),
        }
        cursor.execute(
            EVENT_SQL, [uuid.uuid4(), tenant_id, actor, f"{diff.user_id}:{diff.symbol}"[:64], json.dumps(details), now]
        )
