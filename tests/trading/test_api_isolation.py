"""Every resource, every method: tenant A's token on tenant B's row is a 404
identical to a missing id, and B's row is unchanged. Runs as the app role."""

from __future__ import annotations

import uuid

import pytest

from tenants.access import ACCESS, Reach
from tenants.context import tenant_context
from tests.support.factories import FACTORY_BY_TABLE

pytestmark = pytest.mark.django_db

ROUTES = {
    "trades": "/api/trades/",
    "orders": "/api/orders/",
    "positions": "/api/positions/",
    "portfolio_snapshots": "/api/portfolio-snapshots/",
    "risk_metrics": "/api/risk-metrics/",
    "agent_signals": "/api/agent-signals/",
}
VALID_BODY = {
    "trades": {"symbol": "AAPL", "side": "buy", "quantity": "10", "price": "189.5"},
    "orders": {"symbol": "MSFT", "side": "sell", "order_type": "limit", "quantity": "3", "limit_price": "410"},
    "positions": {"symbol": "NVDA", "quantity": "50", "average_price": "120.25"},
    "portfolio_snapshots": {"total_value": "1000.00", "cash": "400.00", "positions_value": "600.00"},
    "risk_metrics": {"metric": "sharpe", "value": "1.25"},
    "agent_signals": {"agent_name": "momentum", "symbol": "TSLA", "signal": "hold", "confidence": "0.5"},
}
PARAMS = list(ROUTES)
ACTION_OF_METHOD = {"get": "read", "put": "change", "patch": "change", "delete": "delete", "post": "create"}


def admin_may(table: str, method: str) -> bool:
    """The access table (tenants/access.py): positions, for one, nobody writes through the API."""
    return ACCESS[ROUTES[table].strip("/").removeprefix("api/")][ACTION_OF_METHOD[method]].admin is not Reach.NONE


# Resources an admin may create and change through the API.
WRITABLE = [table for table in PARAMS if admin_may(table, "post") and admin_may(table, "put")]


def snapshot(row) -> dict:
    with tenant_context(row.tenant_id):
        fresh = type(row).objects.get(pk=row.pk)
    return {f.attname: getattr(fresh, f.attname) for f in fresh._meta.concrete_fields if f.attname != "updated_at"}


@pytest.mark.parametrize("table", PARAMS)
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_tenants_row_is_404_like_a_missing_one_and_unchanged(table, method, client_a, user_b):
    row_b = FACTORY_BY_TABLE[table](user=user_b)
    before = snapshot(row_b)
    call = getattr(client_a, method)
    kwargs = {"data": VALID_BODY[table], "format": "json"} if method in ("put", "patch") else {}
    foreign = call(f"{ROUTES[table]}{row_b.pk}/", **kwargs)
    missing = call(f"{ROUTES[table]}{uuid.uuid4()}/", **kwargs)
    # A write nobody may make is refused before any row is looked up: the same 403 either way.
    assert foreign.status_code == missing.status_code == (404 if admin_may(table, method) else 403)
    assert foreign.json() == missing.json()
    assert snapshot(row_b) == before


@pytest.mark.parametrize("table", PARAMS)
def test_list_holds_only_the_callers_rows(table, client_a, user_a, user_b):
    own = FACTORY_BY_TABLE[table](user=user_a)
    FACTORY_BY_TABLE[table](user=user_b)
    body = client_a.get(ROUTES[table]).json()
    assert [r["id"] for r in body["results"]] == [str(own.pk)]
    assert {r["tenant_id"] for r in body["results"]} == {str(user_a.tenant_id)}


@pytest.mark.parametrize("table", WRITABLE)
def test_tenant_and_user_in_the_body_are_ignored_on_create_and_update(table, client_a, user_a, user_b):
    body = {
        **VALID_BODY[table],
        "tenant_id": str(user_b.tenant_id),
        "tenant": str(user_b.tenant_id),
        "user": str(user_b.pk),
        "user_id": str(user_b.pk),
    }
    created = client_a.post(ROUTES[table], body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["tenant_id"] == str(user_a.tenant_id)
    assert created.json()["user"] == str(user_a.pk)
    patched = client_a.patch(
        f"{ROUTES[table]}{created.json()['id']}/",
        {"tenant_id": str(user_b.tenant_id), "user": str(user_b.pk)},
        format="json",
    )
    assert patched.status_code == 200
    assert patched.json()["tenant_id"] == str(user_a.tenant_id)
    assert patched.json()["user"] == str(user_a.pk)
    with tenant_context(user_b.tenant):
        assert FACTORY_BY_TABLE[table]._meta.model.objects.count() == 0


@pytest.mark.parametrize("table", WRITABLE)
def test_crud_round_trip(table, client_a, user_a):
    created = client_a.post(ROUTES[table], VALID_BODY[table], format="json")
    assert created.status_code == 201, created.content
    url = f"{ROUTES[table]}{created.json()['id']}/"
    assert {"id", "tenant_id", "created_at"} <= set(created.json())
    fetched = client_a.get(url).json()
    assert {k: v for k, v in fetched.items() if k != "updated_at"} == {
        k: v for k, v in created.json().items() if k != "updated_at"
    }
    assert client_a.put(url, VALID_BODY[table], format="json").status_code == 200
    assert client_a.delete(url).status_code == 204
    assert client_a.get(url).status_code == 404


def test_users_list_and_me_hold_only_the_callers_tenant(client_a, user_a, user_b):
    users = client_a.get("/api/users/").json()
    assert [u["username"] for u in users["results"]] == ["alice"]
    assert client_a.get(f"/api/users/{user_b.pk}/").status_code == 404
    me = client_a.get("/api/users/me/").json()
    assert (me["id"], me["tenant_id"]) == (str(user_a.pk), str(user_a.tenant_id))
