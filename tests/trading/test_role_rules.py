"""The trading rules of CONTRACT section 9, role by role, as the app role.

A trader books orders, trades and signals, and changes or cancels only their
own orders while they are new; only an admin executes an order (moves it to
partially_filled, filled or rejected), amends or deletes a trade (recorded
with before and after), or writes snapshots and risk metrics; a viewer
writes nothing. Every refusal is a 403 that names what the role may not do,
and leaves every row (and the audit log) as it was.
"""

from __future__ import annotations

import pytest

from tenants.context import tenant_context
from tenants.models import TenantAuditEvent
from tenants.roles import Role
from tests.support.clients import bearer_client
from tests.support.factories import OrderFactory, TradeFactory, UserFactory
from trading.models import Order, PortfolioSnapshot, RiskMetric, Trade

pytestmark = pytest.mark.django_db

ORDER = {"symbol": "MSFT", "side": "sell", "order_type": "limit", "quantity": "3", "limit_price": "410"}
TRADE = {"symbol": "AAPL", "side": "buy", "quantity": "10", "price": "189.5"}


@pytest.fixture
def people(tenant_a):
    return {
        role: UserFactory(tenant=tenant_a, username=f"{role}-1", role=role)
        for role in (Role.ADMIN, Role.TRADER, Role.VIEWER)
    } | {"colleague": UserFactory(tenant=tenant_a, username="trader-2", role=Role.TRADER)}


@pytest.fixture
def clients(people):
    return {name: bearer_client(user) for name, user in people.items()}


def rows(model, tenant) -> list[dict]:
    with tenant_context(tenant):
        return list(model.objects.order_by("pk").values())


def events(tenant) -> list[tuple[str, str]]:
    with tenant_context(tenant):
        return [(e.action, e.actor) for e in TenantAuditEvent.objects.order_by("created_at")]


def refused(response, words: str) -> None:
    assert response.status_code == 403, response.content
    assert words in response.json()["detail"]


def test_trader_and_admin_create_a_viewer_does_not(clients, tenant_a):
    assert clients[Role.TRADER].post("/api/orders/", ORDER, format="json").status_code == 201
    assert clients[Role.ADMIN].post("/api/trades/", TRADE, format="json").status_code == 201
    before = rows(Order, tenant_a)
    refused(clients[Role.VIEWER].post("/api/orders/", ORDER, format="json"), "A viewer may not create orders")
    assert rows(Order, tenant_a) == before


def test_trader_changes_and_cancels_own_new_order(clients, people):
    order = OrderFactory(user=people[Role.TRADER])
    url = f"/api/orders/{order.pk}/"
    assert clients[Role.TRADER].patch(url, {"quantity": "4"}, format="json").status_code == 200
    assert clients[Role.TRADER].patch(url, {"status": "cancelled"}, format="json").status_code == 200


def test_trader_cannot_touch_a_colleagues_order(clients, people, tenant_a):
    order = OrderFactory(user=people["colleague"])
    url = f"/api/orders/{order.pk}/"
    before = rows(Order, tenant_a)
    refused(clients[Role.TRADER].patch(url, {"quantity": "1"}, format="json"), "only for their own")
    refused(clients[Role.TRADER].patch(url, {"status": "cancelled"}, format="json"), "only for their own")
    refused(clients[Role.TRADER].delete(url), "only for their own")
    assert rows(Order, tenant_a) == before
    assert clients[Role.ADMIN].patch(url, {"status": "cancelled"}, format="json").status_code == 200


def test_trader_cannot_cancel_own_order_once_it_is_working(clients, people, tenant_a):
    order = OrderFactory(user=people[Role.TRADER], status=Order.Status.PARTIALLY_FILLED)
    before = rows(Order, tenant_a)
    response = clients[Role.TRADER].patch(f"/api/orders/{order.pk}/", {"status": "cancelled"}, format="json")
    refused(response, "only while they are new; this one is partially_filled")
    assert rows(Order, tenant_a) == before


@pytest.mark.parametrize("status", ["partially_filled", "filled", "rejected"])
def test_only_an_admin_executes_an_order(clients, people, tenant_a, status):
    order = OrderFactory(user=people[Role.TRADER])
    url = f"/api/orders/{order.pk}/"
    before = rows(Order, tenant_a)
    refused(clients[Role.TRADER].patch(url, {"status": status}, format="json"), "A trader may not execute orders")
    assert rows(Order, tenant_a) == before
    assert events(tenant_a) == []
    assert clients[Role.ADMIN].patch(url, {"status": status}, format="json").status_code == 200
    assert events(tenant_a) == [("order.executed", str(people[Role.ADMIN].pk))]


def test_trader_deletes_own_new_order_only(clients, people):
    own, other = OrderFactory(user=people[Role.TRADER]), OrderFactory(user=people["colleague"])
    assert clients[Role.TRADER].delete(f"/api/orders/{own.pk}/").status_code == 204
    refused(clients[Role.TRADER].delete(f"/api/orders/{other.pk}/"), "only for their own")


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_a_trader_cannot_rewrite_or_delete_trades_even_their_own(clients, people, tenant_a, method):
    trade = TradeFactory(user=people[Role.TRADER])
    before = rows(Trade, tenant_a)
    call = getattr(clients[Role.TRADER], method)
    kwargs = {"data": {**TRADE, "price": "1.00"}, "format": "json"} if method != "delete" else {}
    verb = "delete trades" if method == "delete" else "amend trades"
    refused(call(f"/api/trades/{trade.pk}/", **kwargs), f"A trader may not {verb} (admins only)")
    assert rows(Trade, tenant_a) == before
    assert events(tenant_a) == []


def test_an_admins_trade_amendment_is_audited_with_before_and_after(clients, people, tenant_a):
    trade = TradeFactory(user=people[Role.TRADER], price="101.25")
    response = clients[Role.ADMIN].patch(f"/api/trades/{trade.pk}/", {"price": "1.00"}, format="json")
    assert response.status_code == 200
    with tenant_context(tenant_a):
        (event,) = TenantAuditEvent.objects.all()
    assert (event.action, event.actor, event.target_type, event.target_id) == (
        "trade.changed",
        str(people[Role.ADMIN].pk),
        "trade",
        str(trade.pk),
    )
    assert event.details["before"]["price"] == "101.25000000"
    assert event.details["after"]["price"] == "1.00000000"
    assert event.details["before"]["symbol"] == event.details["after"]["symbol"] == trade.symbol


def test_an_admins_trade_deletion_is_audited(clients, people, tenant_a):
    trade = TradeFactory(user=people[Role.TRADER])
    assert clients[Role.ADMIN].delete(f"/api/trades/{trade.pk}/").status_code == 204
    with tenant_context(tenant_a):
        (event,) = TenantAuditEvent.objects.all()
        assert not Trade.objects.filter(pk=trade.pk).exists()
    assert event.action == "trade.deleted"
    assert event.details["before"]["symbol"] == trade.symbol
    assert event.details["after"] is None


@pytest.mark.parametrize(
    ("path", "model", "body"),
    [
        ("/api/portfolio-snapshots/", PortfolioSnapshot, {"total_value": "1", "cash": "0", "positions_value": "1"}),
        ("/api/risk-metrics/", RiskMetric, {"metric": "sharpe", "value": "1.25"}),
    ],
)
def test_snapshots_and_risk_metrics_are_not_typed_in_by_traders(clients, tenant_a, path, model, body):
    refused(clients[Role.TRADER].post(path, body, format="json"), "the jobs compute them")
    assert rows(model, tenant_a) == []
    assert clients[Role.ADMIN].post(path, body, format="json").status_code == 201


def test_a_viewer_writes_nothing_anywhere(clients, people, tenant_a):
    order = OrderFactory(user=people[Role.VIEWER])
    before = rows(Order, tenant_a)
    refused(clients[Role.VIEWER].patch(f"/api/orders/{order.pk}/", {"quantity": "1"}, format="json"), "A viewer")
    refused(clients[Role.VIEWER].delete(f"/api/orders/{order.pk}/"), "A viewer")
    refused(clients[Role.VIEWER].post("/api/agent-signals/bulk/", [], format="json"), "A viewer")
    assert rows(Order, tenant_a) == before
    assert clients[Role.VIEWER].get("/api/orders/").status_code == 200
