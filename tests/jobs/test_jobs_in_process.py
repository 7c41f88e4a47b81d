"""The jobs' computations on a tenant's own rows, run in-process as the app
role inside tenant_context (the worker tests run the same code in a worker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError

from jobs.portfolio import take_snapshots
from jobs.risk import compute_risk_metrics
from tenants.context import NoTenantContext, tenant_context
from tests.support.factories import PortfolioSnapshotFactory, PositionFactory, TradeFactory, UserFactory
from trading.models import PortfolioSnapshot, RiskMetric

AS_OF = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def books(tenant_a, tenant_b, user_a, user_b):
    """alice (acme): 10 AAPL, -4 MSFT, 3 NEW (never traded). bob (globex) trades AAPL at another price."""
    t = AS_OF - timedelta(hours=1)
    TradeFactory(user=user_a, symbol="AAPL", price=Decimal("100"), executed_at=t - timedelta(hours=2))
    TradeFactory(user=user_a, symbol="AAPL", price=Decimal("150.50"), executed_at=t)  # the latest: counts
    TradeFactory(user=user_a, symbol="AAPL", price=Decimal("999"), executed_at=AS_OF + timedelta(minutes=1))  # later
    TradeFactory(user=user_a, symbol="MSFT", price=Decimal("20.25"), executed_at=t)
    TradeFactory(user=user_b, symbol="AAPL", price=Decimal("1"), executed_at=AS_OF)  # globex's price: not acme's
    PositionFactory(user=user_a, symbol="AAPL", quantity=Decimal("10"), average_price=Decimal("90"))
    PositionFactory(user=user_a, symbol="MSFT", quantity=Decimal("-4"), average_price=Decimal("21"))
    PositionFactory(user=user_a, symbol="NEW", quantity=Decimal("3"), average_price=Decimal("7.333"))
    PortfolioSnapshotFactory(user=user_a, taken_at=AS_OF - timedelta(days=1), cash=Decimal("500.00"), computed=True)
    return tenant_a


@pytest.mark.django_db
def test_snapshot_values_positions_at_the_tenants_latest_trade_price(books, user_a):
    with tenant_context(books):
        run = take_snapshots(AS_OF)
        snap = PortfolioSnapshot.objects.get(user=user_a, taken_at=AS_OF)
    # 10 * 150.50 - 4 * 20.25 + 3 * 7.333 (average price: never traded) = 1505 - 81 + 21.999 = 1445.999 -> 1446.00
    assert snap.positions_value == Decimal("1446.00")
    assert snap.cash == Decimal("500.00")  # carried from the previous snapshot
    assert snap.total_value == Decimal("1946.00")
    assert snap.tenant_id == books.pk
    assert run.created == 1


@pytest.mark.django_db
def test_snapshot_rerun_writes_nothing_twice_and_the_database_refuses_a_duplicate(books, user_a):
    with tenant_context(books):
        take_snapshots(AS_OF)
        again = take_snapshots(AS_OF)
        assert (again.created, again.already_there) == (0, 1)
        assert PortfolioSnapshot.objects.filter(taken_at=AS_OF).count() == 1
    with pytest.raises(IntegrityError), tenant_context(books):
        PortfolioSnapshotFactory(user=user_a, taken_at=AS_OF)


@pytest.mark.django_db
def test_jobs_outside_a_tenant_context_fail_closed(books):
    with pytest.raises(NoTenantContext):
        take_snapshots(AS_OF)
    with pytest.raises(NoTenantContext):
        compute_risk_metrics(AS_OF)


@pytest.mark.django_db
def test_risk_metrics_from_the_users_own_snapshot_history(tenant_a, tenant_b, user_a, user_b):
    values = ["100", "110", "99", "108.9", "98.01"]  # the hand-worked series of test_risk_formulas
    for i, value in enumerate(values):
        taken = AS_OF - timedelta(days=len(values) - 1 - i)
        PortfolioSnapshotFactory(user=user_a, taken_at=taken, total_value=Decimal(value), computed=True)
        # bob's history in globex moves the other way: it must not enter alice's figures
        PortfolioSnapshotFactory(user=user_b, taken_at=taken, total_value=Decimal(1000 - i), computed=True)
    lonely = UserFactory(tenant=tenant_a, username="newcomer")
    PortfolioSnapshotFactory(user=lonely, taken_at=AS_OF, computed=True)
    with tenant_context(tenant_a):
        run = compute_risk_metrics(AS_OF, window_days=30)
        rows = {m.metric: m for m in RiskMetric.objects.filter(as_of=AS_OF)}
        rerun = compute_risk_metrics(AS_OF, window_days=30)
    assert (run.users, run.too_little_history, run.created) == (2, 1, 5)
    assert rerun.created == 0
    assert {m.user_id for m in rows.values()} == {user_a.pk}
    assert rows["volatility"].value == Decimal("0.11547005")
    assert rows["max_drawdown"].value == Decimal("0.10900000")
    assert rows["var_95"].value == Decimal("0.10000000")
    assert rows["var_99"].value == Decimal("0.10000000")
    assert rows["sharpe"].value == Decimal("0E-8")
    assert {m.window_days for m in rows.values()} == {30}


@pytest.mark.django_db
def test_a_task_refuses_to_start_while_a_tenant_is_still_set(tenant_a):
    from jobs.tenant_tasks import refuse_leftover_tenant
    from tests.jobs.probes import probe_platform

    refuse_leftover_tenant(probe_platform)  # nothing set: fine
    with tenant_context(tenant_a), pytest.raises(RuntimeError, match="still set; refusing to run it"):
        refuse_leftover_tenant(probe_platform)


def test_the_default_tenant_gets_jobs_only_once_it_has_users(tenant_a):
    """`default` holds a legacy database's rows after adoption; empty (a fresh install) there is
    nothing for a job to compute."""
    from jobs.dispatch import tenants_for_jobs
    from tenants.constants import DEFAULT_TENANT_ID
    from tenants.models import Tenant

    assert [t.slug for t in tenants_for_jobs()] == ["acme"]
    UserFactory(tenant=Tenant.objects.get(pk=DEFAULT_TENANT_ID), username="legacy")
    assert [t.slug for t in tenants_for_jobs()] == ["acme", "default"]
