"""The jobs value the truth: positions that follow trades, and rows no hand can pre-empt.

A snapshot or risk metric typed in through the API (an admin's) never blocks
or replaces the job's row for its key: the job's run replaces it, and a
hand-typed snapshot is not history for later runs. The jobs' figures after
booked trades and fills, checked by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from jobs.portfolio import take_snapshots
from jobs.risk import compute_risk_metrics
from tenants.context import tenant_context
from tenants.roles import Role
from tests.support.clients import bearer_client
from tests.support.factories import OrderFactory, UserFactory
from trading.models import PortfolioSnapshot, RiskMetric

pytestmark = pytest.mark.django_db

AS_OF = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)


@pytest.fixture
def admin(tenant_a):
    return UserFactory(tenant=tenant_a, username="jobs-admin", role=Role.ADMIN)


def test_a_posted_sharpe_does_not_survive_the_job(tenant_a, admin):
    api = bearer_client(admin)
    for day, value in enumerate(["100", "110", "99", "108.9", "98.01"]):
        taken = (AS_OF - timedelta(days=4 - day)).isoformat()
        posted = {"total_value": value, "cash": "0", "positions_value": value, "taken_at": taken}
        assert api.post("/api/portfolio-snapshots/", posted, format="json").status_code == 201
    sharpe = {"metric": "sharpe", "value": "99", "window_days": 30, "as_of": AS_OF.isoformat()}
    assert api.post("/api/risk-metrics/", sharpe, format="json").status_code == 201
    with tenant_context(tenant_a):
        run = compute_risk_metrics(AS_OF, window_days=30)
        rows = {m.metric: m for m in RiskMetric.objects.filter(as_of=AS_OF)}
    # Hand-typed snapshots are not history: no figure at all, and the 99 stays a manual row.
    assert run.users == 0
    assert rows["sharpe"].value == Decimal(99) and rows["sharpe"].computed is False
    with tenant_context(tenant_a):
        PortfolioSnapshot.objects.update(computed=True)  # as if the job had written that history
        compute_risk_metrics(AS_OF, window_days=30)
        sharpe_row = RiskMetric.objects.get(as_of=AS_OF, metric="sharpe")
    assert sharpe_row.computed is True
    assert sharpe_row.value == Decimal("0E-8")  # the hand-worked series of test_risk_formulas


def test_a_hand_typed_snapshot_gives_way_to_the_jobs(tenant_a, admin):
    api = bearer_client(admin)
    bogus = {"total_value": "1.00", "cash": "1.00", "positions_value": "0", "taken_at": AS_OF.isoformat()}
    assert api.post("/api/portfolio-snapshots/", bogus, format="json").status_code == 201
    trade = {"symbol": "AAPL", "side": "buy", "quantity": "3", "price": "50", "executed_at": AS_OF.isoformat()}
    assert api.post("/api/trades/", trade, format="json").status_code == 201
    with tenant_context(tenant_a):
        run = take_snapshots(AS_OF)
        snap = PortfolioSnapshot.objects.get(user_id=admin.pk, taken_at=AS_OF)
    assert run.created == 1
    assert (snap.computed, snap.positions_value, snap.cash, snap.total_value) == (
        True,
        Decimal("150.00"),
        Decimal("0.00"),  # the bogus row's cash is not carried: it is no job's
        Decimal("150.00"),
    )
    again = api.post("/api/portfolio-snapshots/", bogus, format="json")  # on the job's key now: refused
    assert again.status_code == 400, again.content


def test_the_jobs_value_positions_that_follow_trades_and_fills(tenant_a, admin):
    """Books and fills, then snapshots on three days and the risk job, every figure worked by hand."""
    api = bearer_client(admin)
    trader = UserFactory(tenant=tenant_a, username="jobs-trader", role=Role.TRADER)
    days = [AS_OF - timedelta(days=2), AS_OF - timedelta(days=1), AS_OF]

    def trade(side, quantity, price, at):
        body = {"symbol": "NVDA", "side": side, "quantity": quantity, "price": price, "executed_at": at.isoformat()}
        assert bearer_client(trader).post("/api/trades/", body, format="json").status_code == 201

    trade("buy", "10", "100", days[0] - timedelta(hours=1))  # 10 at 100
    with tenant_context(tenant_a):
        take_snapshots(days[0])  # 10 * 100 = 1000
        order = OrderFactory(user=trader, symbol="NVDA", side="buy", order_type="market", limit_price=None, quantity=10)
    fill = {"quantity": "10", "price": "120", "executed_at": (days[1] - timedelta(hours=1)).isoformat()}
    assert api.post(f"/api/orders/{order.pk}/fills/", fill, format="json").status_code == 201
    with tenant_context(tenant_a):
        take_snapshots(days[1])  # 20 at (10*100 + 10*120) / 20 = 110, valued at the latest price 120: 2400
    trade("sell", "5", "90", days[2] - timedelta(hours=1))
    with tenant_context(tenant_a):
        take_snapshots(days[2])  # 15 left (average still 110), valued at 90: 1350
        snaps = list(
            PortfolioSnapshot.objects.filter(user_id=trader.pk)
            .order_by("taken_at")
            .values_list("total_value", flat=True)
        )
        compute_risk_metrics(AS_OF, window_days=30)
        metrics = dict(RiskMetric.objects.filter(user_id=trader.pk, as_of=AS_OF).values_list("metric", "value"))
    assert snaps == [Decimal("1000.00"), Decimal("2400.00"), Decimal("1350.00")]
    # Returns 2400/1000 - 1 = 1.4 and 1350/2400 - 1 = -0.4375.
    assert metrics["max_drawdown"] == Decimal("0.43750000")  # (2400 - 1350) / 2400
    assert metrics["var_95"] == Decimal("0.43750000")  # the worst of two returns
    assert metrics["volatility"] == Decimal("1.29930871")  # sqrt(2 * 0.91875^2): sample stdev of the two
