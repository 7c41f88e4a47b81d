"""Orders fill into trades, trades move positions (CONTRACT section 10), through the API, as the app role.

Fills: partial and full, the order's status and filled_quantity, the trade
linked to its order, the position moved; overfills, fills of closed orders,
fills beyond a limit price are 409 and write nothing; bad input is 400; another
tenant's order is 404. Positions follow every trade: buys, sells, a crossing
of zero, an admin's amendment and deletion; positions are read-only for
every role.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tenants.context import tenant_context
from tenants.models import TenantAuditEvent
from tenants.roles import Role
from tests.support.clients import bearer_client
from tests.support.factories import OrderFactory, UserFactory
from trading.models import Order, Position, Trade

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(tenant_a):
    return UserFactory(tenant=tenant_a, username="admin-1", role=Role.ADMIN)


@pytest.fixture
def trader(tenant_a):
    return UserFactory(tenant=tenant_a, username="trader-1", role=Role.TRADER)


@pytest.fixture
def api(admin):
    return bearer_client(admin)


def position(tenant, user, symbol) -> tuple[Decimal, Decimal] | None:
    with tenant_context(tenant):
        row = Position.objects.filter(user_id=user.pk, symbol=symbol).values_list("quantity", "average_price").first()
    return None if row is None else (row[0].normalize(), row[1].normalize())


def written(tenant) -> dict:
    """Everything a refused fill must leave as it was."""
    with tenant_context(tenant):
        return {
            "trades": list(Trade.objects.order_by("pk").values()),
            "orders": list(Order.objects.order_by("pk").values()),
            "positions": list(Position.objects.order_by("pk").values()),
            "events": TenantAuditEvent.objects.count(),
        }


def new_order(tenant, user, **fields) -> Order:
    with tenant_context(tenant):
        defaults = {"symbol": "AAPL", "side": "buy", "order_type": "market", "limit_price": None, "quantity": 10}
        return OrderFactory(user=user, **(defaults | fields))


def fill(api, order, quantity, price="100", **extra):
    return api.post(f"/api/orders/{order.pk}/fills/", {"quantity": quantity, "price": price, **extra}, format="json")


def test_a_partial_then_a_full_fill(api, tenant_a, trader):
    order = new_order(tenant_a, trader, quantity=10)
    first = fill(api, order, "4", "100")
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["order"]["status"] == "partially_filled"
    assert Decimal(body["order"]["filled_quantity"]) == 4
    assert body["trade"]["order"] == str(order.pk)
    assert body["trade"]["user"] == str(trader.pk)  # the order's user, not the admin's
    assert (body["trade"]["symbol"], body["trade"]["side"]) == ("AAPL", "buy")
    assert Decimal(body["position"]["quantity"]) == 4
    second = fill(api, order, "6", "110")
    assert second.status_code == 201, second.content
    assert second.json()["order"]["status"] == "filled"
    assert position(tenant_a, trader, "AAPL") == (Decimal(10), Decimal(106))  # (4*100 + 6*110) / 10
    with tenant_context(tenant_a):
        assert Trade.objects.filter(order_id=order.pk).count() == 2
        assert [e.action for e in TenantAuditEvent.objects.all()].count("order.filled") == 2


def test_an_overfill_is_409_and_writes_nothing(api, tenant_a, trader):
    order = new_order(tenant_a, trader, quantity=10)
    assert fill(api, order, "7").status_code == 201
    before = written(tenant_a)
    response = fill(api, order, "3.00000001")
    assert response.status_code == 409, response.content
    assert "remaining quantity 3" in response.json()["detail"]
    assert written(tenant_a) == before


@pytest.mark.parametrize("status", ["filled", "cancelled", "rejected"])
def test_a_closed_order_does_not_fill(api, tenant_a, trader, status):
    order = new_order(tenant_a, trader, status=status)
    before = written(tenant_a)
    response = fill(api, order, "1")
    assert response.status_code == 409, response.content
    assert f"Order is {status}" in response.json()["detail"]
    assert written(tenant_a) == before


def test_a_limit_order_fills_within_its_limit(api, tenant_a, trader):
    order = new_order(tenant_a, trader, order_type="limit", limit_price=Decimal("100"), side="buy")
    before = written(tenant_a)
    assert fill(api, order, "1", "100.01").status_code == 409
    assert written(tenant_a) == before
    assert fill(api, order, "1", "99.99").status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"quantity": "0", "price": "10"},
        {"quantity": "-1", "price": "10"},
        {"quantity": "NaN", "price": "10"},
        {"quantity": "1", "price": "0"},
        {"quantity": "1", "price": "-5"},
        {"quantity": "1"},
        {"quantity": "1", "price": "10", "executed_at": "yesterday"},
    ],
)
def test_bad_fills_are_400_and_write_nothing(api, tenant_a, trader, body):
    order = new_order(tenant_a, trader)
    before = written(tenant_a)
    response = api.post(f"/api/orders/{order.pk}/fills/", body, format="json")
    assert response.status_code == 400, response.content
    assert written(tenant_a) == before


def test_another_tenants_order_is_not_found(tenant_a, tenant_b, api):
    foreign = new_order(tenant_b, UserFactory(tenant=tenant_b, username="b-trader"))
    response = fill(api, foreign, "1")
    assert response.status_code == 404, response.content
    with tenant_context(tenant_b):
        assert Order.objects.get(pk=foreign.pk).filled_quantity == 0
        assert not Trade.objects.exists()


@pytest.mark.parametrize("role", [Role.TRADER, Role.VIEWER])
def test_only_an_admin_fills(tenant_a, trader, role):
    person = trader if role == Role.TRADER else UserFactory(tenant=tenant_a, username="v", role=Role.VIEWER)
    order = new_order(tenant_a, person)
    before = written(tenant_a)
    response = fill(bearer_client(person), order, "1")
    assert response.status_code == 403, response.content
    assert "may not fill orders" in response.json()["detail"]
    assert written(tenant_a) == before


def test_trades_move_positions_by_weighted_average_cost(tenant_a, trader):
    api = bearer_client(trader)

    def book(side, quantity, price):
        body = {"symbol": "MSFT", "side": side, "quantity": quantity, "price": price}
        response = api.post("/api/trades/", body, format="json")
        assert response.status_code == 201, response.content

    book("buy", "10", "100")
    assert position(tenant_a, trader, "MSFT") == (Decimal(10), Decimal(100))
    book("buy", "30", "120")  # adds: (10*100 + 30*120) / 40
    assert position(tenant_a, trader, "MSFT") == (Decimal(40), Decimal(115))
    book("sell", "15", "130")  # reduces: the average stays
    assert position(tenant_a, trader, "MSFT") == (Decimal(25), Decimal(115))
    book("sell", "40", "90")  # crosses zero: the 15 short open at 90
    assert position(tenant_a, trader, "MSFT") == (Decimal(-15), Decimal(90))
    book("sell", "5", "80")  # adds to the short: (15*90 + 5*80) / 20
    assert position(tenant_a, trader, "MSFT") == (Decimal(-20), Decimal("87.5"))
    book("buy", "20", "70")  # closes it: flat
    assert position(tenant_a, trader, "MSFT") == (Decimal(0), Decimal(0))


def test_an_amendment_and_a_deletion_move_the_position_back(api, tenant_a, admin):
    first = api.post("/api/trades/", {"symbol": "NVDA", "side": "buy", "quantity": "10", "price": "100"}, format="json")
    second = api.post(
        "/api/trades/", {"symbol": "NVDA", "side": "buy", "quantity": "10", "price": "200"}, format="json"
    )
    assert position(tenant_a, admin, "NVDA") == (Decimal(20), Decimal(150))
    amended = api.patch(f"/api/trades/{second.json()['id']}/", {"quantity": "30"}, format="json")
    assert amended.status_code == 200, amended.content
    assert position(tenant_a, admin, "NVDA") == (Decimal(40), Decimal(175))  # (10*100 + 30*200) / 40
    moved = api.patch(f"/api/trades/{second.json()['id']}/", {"symbol": "AMD"}, format="json")
    assert moved.status_code == 200, moved.content
    assert position(tenant_a, admin, "NVDA") == (Decimal(10), Decimal(100))
    assert position(tenant_a, admin, "AMD") == (Decimal(30), Decimal(200))
    assert api.delete(f"/api/trades/{first.json()['id']}/").status_code == 204
    assert position(tenant_a, admin, "NVDA") is None  # no trade left: no position


@pytest.mark.parametrize("role", [Role.ADMIN, Role.TRADER, Role.VIEWER])
def test_positions_are_read_only_for_every_role(tenant_a, role):
    person = UserFactory(tenant=tenant_a, username=f"p-{role}", role=role)
    api = bearer_client(person)
    api.post("/api/trades/", {"symbol": "IBM", "side": "buy", "quantity": "1", "price": "1"}, format="json")
    with tenant_context(tenant_a):
        held = Position.objects.first()
    body = {"symbol": "IBM", "quantity": "5", "average_price": "1"}
    for response in (
        api.post("/api/positions/", body, format="json"),
        api.patch(f"/api/positions/{held.pk}/" if held else "/api/positions/x/", body, format="json"),
        api.delete(f"/api/positions/{held.pk}/" if held else "/api/positions/x/"),
    ):
        assert response.status_code in (403, 404, 405), response.content
        if response.status_code == 403:
            assert "they follow trades" in response.json()["detail"]
    if held is not None:
        assert position(tenant_a, person, "IBM") == (Decimal(1), Decimal(1))
