"""Positions follow trades: the SQL that books a trade and moves its position, and the
recomputation of a position from its trades (trading.ledger holds the arithmetic).

`book_trade` is ONE statement: a data-modifying CTE that inserts the trade and
upserts the position (INSERT ... ON CONFLICT (tenant_id, user_id, symbol) DO
UPDATE with the weighted-average-cost rules in SQL). One statement keeps
POST /api/trades/ at its round trips, and both parts name the same tenant_id
constant, so on a Citus coordinator the whole statement routes to the one
shard group of the tenant (docs/design.md, "Positions follow trades"). The
position's row lock taken by the upsert orders concurrent trades of one
(user, symbol): the second waits, then reads the first's committed figures.

`recompute` (an amendment or deletion of a trade) reads the key's trades and
writes the position they sum to, or deletes it when no trade is left.
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
from trading import ledger, rebuild
from trading.models import Position, Trade

TRADE_COLUMNS = (
    "id",
    "tenant_id",
    "user_id",
    "created_at",
    "symbol",
    "side",
    "quantity",
    "price",
    "executed_at",
    "order_id",
)
POSITION_COLUMNS = ("id", "tenant_id", "user_id", "created_at", "updated_at", "symbol", "quantity", "average_price")

# The rules of trading.ledger.apply_trade, for p (the stored position) and
# EXCLUDED (this trade: its signed quantity and its price as average_price).
_AVERAGE = """CASE
    WHEN p.quantity + EXCLUDED.quantity = 0 THEN 0
    WHEN p.quantity = 0 OR (p.quantity > 0) = (EXCLUDED.quantity > 0) THEN
        round((abs(p.quantity) * p.average_price + abs(EXCLUDED.quantity) * EXCLUDED.average_price)
              / abs(p.quantity + EXCLUDED.quantity), 8)
    WHEN abs(EXCLUDED.quantity) < abs(p.quantity) THEN p.average_price
    ELSE EXCLUDED.average_price
END"""

BOOK_TRADE_SQL = (
    sql.SQL(
        "WITH t AS (INSERT INTO trades ({trade_columns}) VALUES ({trade_values}) RETURNING {trade_columns}), "
        "p AS (INSERT INTO positions AS p ({position_columns}) VALUES ({position_values}) "
        "ON CONFLICT (tenant_id, user_id, symbol) DO UPDATE SET "
        "quantity = p.quantity + EXCLUDED.quantity, average_price = {average}, updated_at = EXCLUDED.updated_at "
        "RETURNING {position_columns}) "
        "SELECT {trade_select}, {position_select} FROM t, p"
    )
    .format(
        average=sql.SQL(_AVERAGE),
        trade_columns=sql.SQL(", ").join(map(sql.Identifier, TRADE_COLUMNS)),
        trade_values=sql.SQL(", ").join(sql.Placeholder() * len(TRADE_COLUMNS)),
        position_columns=sql.SQL(", ").join(map(sql.Identifier, POSITION_COLUMNS)),
        position_values=sql.SQL(", ").join(sql.Placeholder() * len(POSITION_COLUMNS)),
        trade_select=sql.SQL(", ").join(sql.Identifier("t", c) for c in TRADE_COLUMNS),
        position_select=sql.SQL(", ").join(sql.Identifier("p", c) for c in POSITION_COLUMNS),
    )
    .as_string(None)
)


@dataclass(frozen=True)
class Booked:
    trade: Trade
    position: Position


def _from_row(model: type[Trade] | type[Position], columns: tuple[str, ...], values: tuple) -> Any:
    """A model instance from a RETURNING row (from_db wants the values in the model's field order)."""
    by_column = dict(zip(columns, values, strict=True))
    fields = model._meta.concrete_fields
    return model.from_db("default", [f.attname for f in fields], [by_column[f.column] for f in fields])


def book_trade(
    *,
    user_id: uuid.UUID,
    symbol: str,
    side: str,
    quantity: Decimal,
    price: Decimal,
    executed_at: Any = None,
    order_id: uuid.UUID | None = None,
) -> Booked:
    """Insert a trade in the current tenant and move its position, in one statement."""
    tenant_id = require_tenant_id()
    now = timezone.now()
    executed_at = executed_at or now
    trade_values: list[Any] = [
        uuid.uuid4(),
        tenant_id,
        user_id,
        now,
        symbol,
        side,
        quantity,
        price,
        executed_at,
        order_id,
    ]
    position_values: list[Any] = [uuid.uuid4(), tenant_id, user_id, now, now, symbol, ledger.signed(side, quantity)]
    position_values.append(price)
    with connection.cursor() as cursor:
        cursor.execute(BOOK_TRADE_SQL, [*trade_values, *position_values])
        row = cursor.fetchone()
    n = len(TRADE_COLUMNS)
    return Booked(
        trade=_from_row(Trade, TRADE_COLUMNS, row[:n]),
        position=_from_row(Position, POSITION_COLUMNS, row[n:]),
    )


def trades_of(user_id: object, symbol: str) -> list[tuple[str, Decimal, Decimal]]:
    """(side, quantity, price) of one user's trades in `symbol`, in booking order."""
    return list(
        Trade.objects.filter(user_id=user_id, symbol=symbol)
        .order_by("created_at", "id")
        .values_list("side", "quantity", "price")
    )


def recompute(user_id: uuid.UUID, symbol: str) -> None:
    """Write the position of (user, symbol) as its trades sum it; delete it when no trade is left.

    Two statements: the key's trades, then one upsert (or delete) of its position."""
    tenant_id = require_tenant_id()
    trades = trades_of(user_id, symbol)
    with connection.cursor() as cursor:
        if not trades:
            cursor.execute(rebuild.DELETE_SQL, [tenant_id, user_id, symbol])
            return
        now = timezone.now()
        cursor.execute(rebuild.UPSERT_SQL, [uuid.uuid4(), tenant_id, user_id, symbol, *ledger.fold(trades), now, now])
