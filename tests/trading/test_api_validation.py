"""Domain rules and hostile input: every bad request is a 4xx JSON answer and
writes nothing; nothing is ever a 500."""

from __future__ import annotations

import json

import pytest

from tenants.context import tenant_context
from tests.support.factories import OrderFactory, TradeFactory
from trading.models import Order, Position, Trade

pytestmark = pytest.mark.django_db

GOOD_TRADE = {"symbol": "AAPL", "side": "buy", "quantity": "10", "price": "189.5"}


def trade_count(tenant) -> int:
    with tenant_context(tenant):
        return Trade.objects.count()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "-5"}, "quantity"),
        ({"quantity": "1e30"}, "quantity"),
        ({"quantity": "12345678901234567890"}, "quantity"),
        ({"quantity": "0.000000001"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": "Infinity"}, "quantity"),
        ({"price": "abc"}, "price"),
        ({"price": ["1"]}, "price"),
        ({"side": "hold"}, "side"),
        ({"side": ["buy"]}, "side"),
        ({"symbol": "A" * 17}, "symbol"),
        ({"symbol": "AA\x00PL"}, "symbol"),
        ({"symbol": "drop table;"}, "symbol"),
        ({"symbol": {"nested": "x"}}, "symbol"),
        ({"executed_at": "yesterday"}, "executed_at"),
    ],
)
def test_bad_trade_field_is_400_and_writes_nothing(client_a, tenant_a, change, field):
    response = client_a.post("/api/trades/", {**GOOD_TRADE, **change}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert trade_count(tenant_a) == 0


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b'"just a string"', b"null", b"\xff\xfe", b'{"symbol": "AAPL"' + b" " * 10],
)
def test_malformed_body_is_400(client_a, tenant_a, raw):
    response = client_a.generic("POST", "/api/trades/", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert trade_count(tenant_a) == 0


def test_oversized_body_is_refused_without_a_500(client_a, tenant_a):
    body = json.dumps({**GOOD_TRADE, "padding": "x" * (2 * 1024 * 1024)})
    response = client_a.generic("POST", "/api/trades/", body, content_type="application/json")
    assert response.status_code in (400, 413)
    assert trade_count(tenant_a) == 0


def test_unsupported_media_type_is_415(client_a):
    assert client_a.generic("POST", "/api/trades/", "symbol=AAPL", content_type="text/plain").status_code == 415


def test_non_uuid_id_is_404(client_a):
    assert client_a.get("/api/trades/not-a-uuid/").status_code == 404
    assert client_a.get("/api/trades/' OR 1=1 --/").status_code == 404


def test_limit_order_needs_a_limit_price_and_market_forbids_one(client_a):
    base = {"symbol": "AAPL", "side": "buy", "quantity": "1"}
    limit = client_a.post("/api/orders/", {**base, "order_type": "limit"}, format="json")
    assert limit.status_code == 400 and "limit_price" in limit.json()
    market = client_a.post("/api/orders/", {**base, "order_type": "market", "limit_price": "10"}, format="json")
    assert market.status_code == 400 and "limit_price" in market.json()
    ok = client_a.post("/api/orders/", {**base, "order_type": "market", "limit_price": None}, format="json")
    assert ok.status_code == 201 and ok.json()["status"] == "new"


def test_new_order_cannot_start_filled(client_a):
    body = {"symbol": "AAPL", "side": "buy", "quantity": "1", "order_type": "market", "status": "filled"}
    assert client_a.post("/api/orders/", body, format="json").status_code == 400


def test_a_filled_order_cannot_be_cancelled(client_a, user_a):
    order = OrderFactory(user=user_a, status="filled")
    response = client_a.patch(f"/api/orders/{order.pk}/", {"status": "cancelled"}, format="json")
    assert response.status_code == 400
    assert "final" in response.json()["status"][0]
    with tenant_context(user_a.tenant):
        assert Order.objects.get(pk=order.pk).status == "filled"


def test_order_status_moves_along_allowed_transitions(client_a, user_a):
    order = OrderFactory(user=user_a)
    url = f"/api/orders/{order.pk}/"
    assert client_a.patch(url, {"status": "partially_filled"}, format="json").status_code == 200
    assert client_a.patch(url, {"status": "new"}, format="json").status_code == 400
    assert client_a.patch(url, {"status": "cancelled"}, format="json").status_code == 200


def test_positions_are_not_written_through_the_api(client_a, user_a):
    """Positions follow trades (CONTRACT section 10): even an admin's POST is refused, and writes nothing."""
    response = client_a.post(
        "/api/positions/", {"symbol": "AAPL", "quantity": "1", "average_price": "1"}, format="json"
    )
    assert response.status_code == 403
    assert "may not create positions" in response.json()["detail"]
    with tenant_context(user_a.tenant):
        assert Position.objects.count() == 0


@pytest.mark.parametrize("confidence", ["-0.1", "1.0001", "2", "abc"])
def test_signal_confidence_must_be_between_0_and_1(client_a, confidence):
    body = {"agent_name": "a", "symbol": "AAPL", "signal": "buy", "confidence": confidence}
    assert client_a.post("/api/agent-signals/", body, format="json").status_code == 400


def test_symbol_is_normalised_to_upper_case(client_a):
    response = client_a.post("/api/trades/", {**GOOD_TRADE, "symbol": " btc-usd "}, format="json")
    assert response.json()["symbol"] == "BTC-USD"


def test_pagination_walks_only_the_callers_rows_newest_first(client_a, user_a, user_b):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    mine = [TradeFactory(user=user_a, created_at=now - timedelta(seconds=i)) for i in range(120)]
    for i in range(30):
        TradeFactory(user=user_b, created_at=now - timedelta(seconds=i))
    seen, url = [], "/api/trades/?page_size=50"
    while url:
        page = client_a.get(url).json()
        assert set(page) == {"next", "previous", "results"}
        seen += [r["id"] for r in page["results"]]
        url = page["next"]
    assert seen == [str(t.pk) for t in mine]


@pytest.mark.parametrize(
    "query",
    [
        "cursor=garbage",
        "cursor=%00",
        "page_size=abc",
        "page_size=-1",
        "created_after=notadate",
        "side=hold",
        "symbol=" + "X" * 100,
    ],
)
def test_bad_list_parameters_are_400_or_ignored_never_500(client_a, query):
    response = client_a.get(f"/api/trades/?{query}")
    assert response.status_code in (200, 400, 404), response.content
    assert response["Content-Type"].startswith("application/json")


def test_page_size_is_capped_at_500(client_a, user_a):
    for _ in range(3):
        TradeFactory(user=user_a)
    response = client_a.get("/api/trades/?page_size=100000")
    assert response.status_code == 200


def test_filters_by_symbol_side_and_created_range(client_a, user_a):
    TradeFactory(user=user_a, symbol="AAPL", side="buy")
    TradeFactory(user=user_a, symbol="MSFT", side="sell")
    assert [r["symbol"] for r in client_a.get("/api/trades/?symbol=aapl").json()["results"]] == ["AAPL"]
    assert [r["symbol"] for r in client_a.get("/api/trades/?side=sell").json()["results"]] == ["MSFT"]
    assert client_a.get("/api/trades/?created_after=2999-01-01T00:00:00Z").json()["results"] == []


def test_a_value_the_database_refuses_is_400_and_the_connection_stays_usable(client_a, user_a):
    """Found by the schema fuzzer: PostgreSQL's text input rejects a +16:00 offset that
    Python accepts. With server-side binding the value travels as a binary timestamptz,
    which PostgreSQL takes: the filter works. Either way no 500, and the connection
    stays usable."""
    trade = TradeFactory(user=user_a)
    response = client_a.get("/api/trades/", {"created_after": "2000-01-01T00:00:00+16:00"})
    assert response.status_code == 200, response.content
    assert [row["id"] for row in response.json()["results"]] == [str(trade.pk)]
    assert client_a.get("/api/trades/").status_code == 200


def test_a_filled_order_keeps_its_terms_and_cannot_be_deleted(client_a):
    order = client_a.post(
        "/api/orders/", {"symbol": "AAPL", "side": "buy", "order_type": "market", "quantity": "5"}, format="json"
    ).json()
    url = f"/api/orders/{order['id']}/"
    assert client_a.patch(url, {"status": "filled"}, format="json").status_code == 200
    changed = client_a.patch(url, {"quantity": "7"}, format="json")
    assert changed.status_code == 400
    assert "can only change its status" in changed.json()["non_field_errors"][0]
    deleted = client_a.delete(url)
    assert deleted.status_code == 409
    assert deleted.json() == {"detail": "An order that is filled cannot be deleted: it is a record of what happened."}
    after = client_a.get(url).json()
    assert (after["quantity"], after["status"]) == (order["quantity"], "filled")


def test_a_working_order_is_cancelled_not_deleted_and_a_new_one_may_be_deleted(client_a):
    body = {"symbol": "AAPL", "side": "buy", "order_type": "limit", "quantity": "5", "limit_price": "100"}
    working = client_a.post("/api/orders/", body, format="json").json()
    fresh = client_a.post("/api/orders/", body, format="json").json()
    assert (
        client_a.patch(f"/api/orders/{working['id']}/", {"status": "partially_filled"}, format="json").status_code
        == 200
    )
    refused = client_a.delete(f"/api/orders/{working['id']}/")
    assert refused.status_code == 409 and refused.json()["detail"].endswith("cancel it instead.")
    assert client_a.delete(f"/api/orders/{fresh['id']}/").status_code == 204


def test_login_rate_limit_ignores_a_forged_x_forwarded_for(settings, user_a, client):
    settings.LOGIN_RATE_LIMIT = "2/min"
    wrong = {"tenant": "acme", "username": "alice", "password": "wrong"}
    for n in range(2):
        client.post("/api/auth/token/", wrong, content_type="application/json", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    third = client.post("/api/auth/token/", wrong, content_type="application/json", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert third.status_code == 429


def test_schema_descriptions_are_the_resources_own(client):
    schema = client.get("/api/schema/?format=json").json()
    descriptions = {op.get("description", "") for path in schema["paths"].values() for op in path.values()}
    assert not any("Declare `queryset" in d or "A viewset that provides" in d for d in descriptions)
    assert schema["paths"]["/api/orders/"]["post"]["description"].startswith("Orders of the caller's tenant.")
