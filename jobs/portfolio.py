"""portfolio_snapshot: each user's positions valued at the latest trade price.

Runs as the current tenant (inside tenant_context, as TenantTask arranges):
every query goes through the tenant-scoped managers, so it filters by
tenant_id (which also routes it to one shard on Citus) and RLS checks it
again underneath.

For each active user of the tenant, at `as_of`:
- the price of a symbol is the price of the tenant's latest trade in it
  executed at or before `as_of` (by executed_at, then created_at); a symbol
  never traded yet is valued at the position's average price;
- positions_value = sum(quantity * price) over the user's positions (shorts
  are negative quantities, so they subtract);
- cash: AlphaPulse keeps no cash ledger, so a snapshot carries the cash of the
  user's previous snapshot (0 for the first one);
- total_value = cash + positions_value, each rounded to cents (half even).

Idempotent: one snapshot per (tenant, user, taken_at = as_of), enforced by the
unique constraint `portfolio_snapshots_natural_key`; a rerun (a redelivered
task, beat and a manual run for the same time) writes nothing new.

Computed rows cannot be pre-empted: the job's rows are `computed`; a snapshot
typed in through the API (computed false) on the job's key is replaced by the
job's own (INSERT ... ON CONFLICT DO UPDATE), and never counts as history (the
previous cash, the risk job's values).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from tenants.models import User
from trading.models import PortfolioSnapshot, Position, Trade

CENT = Decimal("0.01")


@dataclass(frozen=True)
class SnapshotRun:
    created: int
    already_there: int

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "already_there": self.already_there}


def latest_prices(as_of: datetime) -> dict[str, Decimal]:
    """Symbol -> price of the tenant's latest trade in it at or before `as_of`."""
    rows = (
        Trade.objects.filter(executed_at__lte=as_of)
        .order_by("symbol", "-executed_at", "-created_at")
        .distinct("symbol")
        .values_list("symbol", "price")
    )
    return dict(rows)


def value_positions(positions: list[tuple[str, Decimal, Decimal]], prices: dict[str, Decimal]) -> Decimal:
    """positions: (symbol, quantity, average_price). Sum of quantity * latest price, in cents."""
    total = sum((quantity * prices.get(symbol, average) for symbol, quantity, average in positions), Decimal(0))
    return total.quantize(CENT, rounding=ROUND_HALF_EVEN)


def take_snapshots(as_of: datetime) -> SnapshotRun:
    """One PortfolioSnapshot per active user of the current tenant at `as_of` (see the module docstring)."""
    done = set(PortfolioSnapshot.objects.filter(taken_at=as_of, computed=True).values_list("user_id", flat=True))
    users = [user for user in User.objects.filter(is_active=True).only("id") if user.pk not in done]
    if not users:
        return SnapshotRun(created=0, already_there=len(done))
    prices = latest_prices(as_of)
    holdings: dict[object, list[tuple[str, Decimal, Decimal]]] = {}
    for user_id, symbol, quantity, average in Position.objects.values_list(
        "user_id", "symbol", "quantity", "average_price"
    ):
        holdings.setdefault(user_id, []).append((symbol, quantity, average))
    previous_cash = dict(
        PortfolioSnapshot.objects.filter(taken_at__lt=as_of, computed=True)
        .order_by("user_id", "-taken_at")
        .distinct("user_id")
        .values_list("user_id", "cash")
    )
    snapshots = []
    for user in users:
        positions_value = value_positions(holdings.get(user.pk, []), prices)
        cash = previous_cash.get(user.pk, Decimal("0.00"))
        snapshots.append(
            PortfolioSnapshot(
                tenant_id=user.tenant_id,
                user=user,
                taken_at=as_of,
                cash=cash,
                positions_value=positions_value,
                total_value=(cash + positions_value).quantize(CENT, rounding=ROUND_HALF_EVEN),
                computed=True,
            )
        )
    # ON CONFLICT DO UPDATE: a hand-typed row on the key gives way to the job's;
    # a second delivery racing this one waits on the unique index, then writes
    # the same figures again.
    PortfolioSnapshot.objects.bulk_create(
        snapshots,
        update_conflicts=True,
        unique_fields=["tenant", "user", "taken_at"],
        update_fields=["total_value", "cash", "positions_value", "computed"],
    )
    return SnapshotRun(created=len(snapshots), already_there=len(done))
