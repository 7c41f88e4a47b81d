"""Issue 25: two indexes on trades that stop the whale's queries from growing with its rows,
both built CONCURRENTLY (writers are not blocked; the reverse drops them CONCURRENTLY).

- idx_trades_tenant_symbol (tenant_id, symbol, created_at DESC): the filtered list
  (`GET /api/trades/?symbol=S[&side=...]`) had no index holding symbol. The planner walked
  the tenant's rows newest first and filtered them (a few thousand rows per page while the
  symbol is common), or, for a symbol the tenant rarely or never trades, read every row:
  a parallel sequential scan of the whole table, 0.1 s at 1M trades and 0.8 s at 10M for
  the whale (p50 1.6 s through the API; docs/benchmarks/scale.md). Now a page by symbol is
  one range of that tenant and symbol, newest first.
- idx_trades_tenant_user_symbol (tenant_id, user_id, symbol, created_at): amending a trade
  recomputes its position from the trades of that (user, symbol) in booking order
  (trading.positions.trades_of). The only index was the one on user_id: every trade of the
  user was read and filtered by symbol, 30 times the rows needed, so the whale's PATCH grew
  with its users' histories (p50 34 ms at 1M, 77 ms at 10M). Now it reads just that key's
  rows, already in order.

Both lead with tenant_id like every tenant index (on Citus each shard gets its own).
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("trading", "0009_i24_positions_from_trades")]

    operations = [
        AddIndexConcurrently(
            "trade",
            models.Index(fields=["tenant", "symbol", "-created_at"], name="idx_trades_tenant_symbol"),
        ),
        AddIndexConcurrently(
            "trade",
            models.Index(fields=["tenant", "user", "symbol", "created_at"], name="idx_trades_tenant_user_symbol"),
        ),
    ]
