"""Plan shapes of the API's hot queries under RLS, as the app role (never timings).

A big tenant (60,000 trades) and a small one (300) are inserted by the owner
(who passes the policies through rls_bypass_role) with INSERT ... SELECT
generate_series, committed and ANALYZEd, so the planner sees realistic
statistics. Then, as the app role inside tenant_context (RLS on), the list,
filtered list and detail querysets the viewsets really build
(trading.query_shapes) are EXPLAINed in JSON and the plans are checked:

- list and filtered list read trades through an index whose first column is
  tenant_id (idx_trades_tenant_created or idx_trades_tenant_id), never a
  sequential scan;
- detail is an index lookup: the primary key (a unique id is the cheapest
  probe; the tenant condition is then checked on that one row) or a
  tenant-leading index, again never a sequential scan.

- a filtered page (by symbol, by symbol and side) reads about a page of rows,
  whatever the tenant holds and however rarely the filter matches: EXPLAIN
  ANALYZE counts the rows its scans of trades return and filter out. Before
  idx_trades_tenant_symbol (trading/0010) the big tenant's page for a symbol it
  does not hold read every one of its rows (docs/benchmarks/scale.md);
- a position's recomputation (an amended trade) reads the trades of that
  (user, symbol) and no others: before idx_trades_tenant_user_symbol it read
  every trade of the user and filtered by symbol.

The last test proves the check can fail: with index scans disabled the same
query's plan is rejected.

Single node only: these are PostgreSQL's plans; on Citus the coordinator plans
a router query to one shard (tests/citus/test_routing.py checks that), and its
INSERT ... SELECT of the fixture runs as COPY, which Citus refuses under RLS.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from django.db import connection, connections

from tenants.context import tenant_context
from trading.models import Trade
from trading.positions import trades_of
from trading.query_shapes import detail_queryset, list_queryset
from trading.views import TradeViewSet

BIG_TRADES = 60_000
SMALL_TRADES = 300
SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "SPY", "QQQ"]

INSERT_TENANT = (
    "INSERT INTO tenants (id, name, slug, subscription_tier, status, created_at, updated_at) "
    "VALUES (%s, %s, %s, 'pro', 'active', now(), now())"
)
INSERT_USERS = (
    "INSERT INTO users (id, tenant_id, password, username, email, is_active, is_staff, is_superuser, created_at) "
    "SELECT gen_random_uuid(), %(tenant)s, '', 'plan-user-' || g, '', true, false, false, now() "
    "FROM generate_series(1, %(n)s) g"
)
INSERT_TRADES = (
    "WITH u AS (SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE tenant_id = %(tenant)s) "
    "INSERT INTO trades (id, tenant_id, user_id, created_at, symbol, side, quantity, price, executed_at) "
    "SELECT gen_random_uuid(), %(tenant)s, u.ids[1 + g %% cardinality(u.ids)], "
    "now() - g * interval '37 seconds', (%(symbols)s::text[])[1 + g %% cardinality(%(symbols)s::text[])], "
    "CASE WHEN g %% 2 = 0 THEN 'buy' ELSE 'sell' END, 1 + g %% 100, 10 + g %% 500, now() "
    "FROM generate_series(1, %(n)s) g, u"
)
# For each index of trades: its name and the name of its first column.
INDEX_LEADS = (
    "SELECT c.relname, a.attname, i.indisprimary FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
    "WHERE i.indrelid = 'trades'::regclass"
)


@pytest.fixture(scope="module")
def tenants_with_trades(django_db_setup, django_db_blocker) -> Iterator[dict[str, uuid.UUID]]:
    """Committed rows for two tenants, by the owner, ANALYZEd; removed afterwards."""
    ids = {"big": uuid.uuid4(), "small": uuid.uuid4()}
    sizes = {"big": (20, BIG_TRADES), "small": (2, SMALL_TRADES)}
    with django_db_blocker.unblock():
        owner = connections["owner"]
        try:
            with owner.cursor() as cursor:
                for label, tenant in ids.items():
                    users, trades = sizes[label]
                    cursor.execute(INSERT_TENANT, [tenant, f"Plan {label}", f"plan-{label}-{tenant.hex[:8]}"])
                    cursor.execute(INSERT_USERS, {"tenant": tenant, "n": users})
                    cursor.execute(INSERT_TRADES, {"tenant": tenant, "n": trades, "symbols": SYMBOLS})
                cursor.execute("ANALYZE tenants, users, trades")
            yield ids
        finally:
            with owner.cursor() as cursor:
                tenants = list(ids.values())
                cursor.execute("DELETE FROM trades WHERE tenant_id = ANY(%s)", [tenants])
                cursor.execute("DELETE FROM users WHERE tenant_id = ANY(%s)", [tenants])
                cursor.execute("DELETE FROM tenants WHERE id = ANY(%s)", [tenants])
                cursor.execute("ANALYZE tenants, users, trades")


def plan_of(queryset) -> dict:
    raw = queryset.explain(format="json")
    document = json.loads(raw) if isinstance(raw, str) else raw
    return document[0]["Plan"]


def nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def analyzed_plan_of(queryset) -> dict:
    raw = queryset.explain(format="json", analyze=True)
    document = json.loads(raw) if isinstance(raw, str) else raw
    return document[0]["Plan"]


def rows_read(plan: dict) -> int:
    """Rows the scans of trades returned plus those their filters removed (EXPLAIN ANALYZE's figures
    are per loop: times the loops)."""
    total = 0
    for node in nodes(plan):
        if node.get("Relation Name") == "trades":
            loops = node.get("Actual Loops", 1)
            total += (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * loops
    return total


def trades_access(plan: dict) -> tuple[list[dict], list[str]]:
    """The plan nodes that read trades, and every index they go through."""
    scans = [n for n in nodes(plan) if n.get("Relation Name") == "trades"]
    indexes = [n["Index Name"] for n in nodes(plan) if "Index Name" in n]
    return scans, indexes


def index_leads() -> dict[str, tuple[str, bool]]:
    with connection.cursor() as cursor:
        cursor.execute(INDEX_LEADS)
        return {name: (first_column, primary) for name, first_column, primary in cursor.fetchall()}


def assert_tenant_index_plan(plan: dict, *, allow_primary_key: bool = False) -> None:
    scans, indexes = trades_access(plan)
    shown = json.dumps(plan, indent=1)
    assert scans, f"the plan does not read trades at all:\n{shown}"
    assert not [s for s in scans if s["Node Type"] == "Seq Scan"], f"sequential scan of trades:\n{shown}"
    assert indexes, f"trades is read without an index:\n{shown}"
    leads = index_leads()
    for name in indexes:
        first_column, primary = leads[name]
        ok = first_column == "tenant_id" or (allow_primary_key and primary)
        assert ok, f"index {name} leads with {first_column}, not tenant_id:\n{shown}"
    if allow_primary_key:
        # On a primary-key probe the tenant must still be checked on the row.
        conditions = " ".join(f"{s.get('Index Cond', '')} {s.get('Filter', '')}" for s in scans)
        assert "tenant_id" in conditions, f"the detail lookup does not check tenant_id:\n{shown}"


pytestmark = [pytest.mark.django_db, pytest.mark.single_node]


@pytest.mark.parametrize("size", ["big", "small"])
def test_list_page_reads_a_tenant_leading_index(tenants_with_trades, size):
    with tenant_context(tenants_with_trades[size]):
        plan = plan_of(list_queryset(TradeViewSet, {"page_size": 50}))
    assert_tenant_index_plan(plan)
    assert plan["Node Type"] == "Limit" and plan["Plan Rows"] <= 51


@pytest.mark.parametrize("size", ["big", "small"])
def test_filtered_list_reads_a_tenant_leading_index(tenants_with_trades, size):
    with tenant_context(tenants_with_trades[size]):
        plan = plan_of(list_queryset(TradeViewSet, {"symbol": "aapl", "side": "buy"}))
    assert_tenant_index_plan(plan)


PAGE = 50


@pytest.mark.parametrize("size", ["big", "small"])
@pytest.mark.parametrize(
    "params",
    [{"symbol": "aapl", "side": "buy"}, {"symbol": "zz-none"}],
    ids=["symbol-and-side", "symbol-not-held"],
)
def test_filtered_page_reads_about_a_page(tenants_with_trades, size, params):
    with tenant_context(tenants_with_trades[size]):
        plan = analyzed_plan_of(list_queryset(TradeViewSet, {**params, "page_size": PAGE}))
    assert_tenant_index_plan(plan)
    # The side filter keeps about half of a symbol's rows: two pages' worth read, with room to spare;
    # a tenant smaller than that may be read whole (the planner's cheapest way to the same page).
    assert rows_read(plan) <= max(4 * (PAGE + 1), SMALL_TRADES), json.dumps(plan, indent=1)


@pytest.mark.parametrize("size", ["big", "small"])
def test_a_position_recomputation_reads_only_its_key(tenants_with_trades, size):
    with tenant_context(tenants_with_trades[size]):
        user_id = Trade.objects.values_list("user_id", flat=True).first()
        expected = len(trades_of(user_id, "AAPL"))
        # trades_of's queryset, as trading.positions builds it.
        queryset = Trade.objects.filter(user_id=user_id, symbol="AAPL").order_by("created_at", "id")
        plan = analyzed_plan_of(queryset.values_list("side", "quantity", "price"))
    assert expected > 0
    assert_tenant_index_plan(plan)
    assert rows_read(plan) <= expected + 1, json.dumps(plan, indent=1)


@pytest.mark.parametrize("size", ["big", "small"])
def test_detail_is_an_index_lookup_that_checks_the_tenant(tenants_with_trades, size):
    with tenant_context(tenants_with_trades[size]):
        trade_id = list_queryset(TradeViewSet, {"page_size": 1})[0].pk
        plan = plan_of(detail_queryset(TradeViewSet, trade_id))
    assert_tenant_index_plan(plan, allow_primary_key=True)


def test_the_plan_check_rejects_a_sequential_scan(tenants_with_trades):
    """The check can fail: the same list query, planned without index scans."""
    with tenant_context(tenants_with_trades["big"]):
        with connection.cursor() as cursor:
            for setting in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
                cursor.execute("SELECT set_config(%s, 'off', true)", [setting])
        plan = plan_of(list_queryset(TradeViewSet, {"page_size": 50}))
        with connection.cursor() as cursor:
            for setting in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
                cursor.execute("SELECT set_config(%s, 'on', true)", [setting])
    with pytest.raises(AssertionError, match="sequential scan of trades"):
        assert_tenant_index_plan(plan)
