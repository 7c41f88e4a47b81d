"""Idempotency-Key on POST under /api/ (CONTRACT section 10), as the app role.

The same key from the same principal replays the first answer's status and
body and writes nothing; another body with that key is 422; a key longer
than 255 characters is 400 and writes nothing; another principal's key, or a
key past 24 hours, is a new request; a refused first request (4xx) keeps no
key. Concurrent duplicates: tests/trading/test_concurrent_writes.py.
"""

from __future__ import annotations

import pytest
from django.db import connection

from tenants.context import tenant_context
from tenants.models import IdempotencyKey
from tenants.roles import Role
from tests.support.clients import bearer_client
from tests.support.factories import OrderFactory, UserFactory
from trading.models import AgentSignal, Order, Position, Trade

pytestmark = pytest.mark.django_db

TRADE = {"symbol": "AAPL", "side": "buy", "quantity": "10", "price": "189.5"}
ORDER = {"symbol": "MSFT", "side": "sell", "order_type": "market", "quantity": "3"}


@pytest.fixture
def admin(tenant_a):
    return UserFactory(tenant=tenant_a, username="idem-admin", role=Role.ADMIN)


@pytest.fixture
def api(admin):
    return bearer_client(admin)


def count(model, tenant) -> int:
    with tenant_context(tenant):
        return model.objects.count()


def post(api, path, body, key):
    return api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.parametrize(
    ("path", "body", "model"),
    [
        ("/api/trades/", TRADE, Trade),
        ("/api/orders/", ORDER, Order),
        ("/api/agent-signals/", {"agent_name": "a", "symbol": "X", "signal": "buy", "confidence": "0.5"}, AgentSignal),
        (
            "/api/agent-signals/bulk/",
            [{"agent_name": "a", "symbol": "X", "signal": "buy", "confidence": "0.5"}],
            AgentSignal,
        ),
    ],
)
def test_a_retry_replays_the_first_answer_and_writes_nothing(api, tenant_a, path, body, model):
    first = post(api, path, body, "key-1")
    assert first.status_code == 201, first.content
    again = post(api, path, body, "key-1")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert count(model, tenant_a) == 1
    assert post(api, path, body, "key-2").status_code == 201  # another key: another request
    assert count(model, tenant_a) == 2


def test_a_trade_replay_does_not_move_the_position_twice(api, tenant_a, admin):
    for _ in range(3):
        assert post(api, "/api/trades/", TRADE, "once").status_code == 201
    with tenant_context(tenant_a):
        assert Position.objects.get(user_id=admin.pk, symbol="AAPL").quantity == 10


def test_a_fill_replay_fills_once(api, tenant_a, admin):
    with tenant_context(tenant_a):
        order = OrderFactory(user=admin, order_type="market", limit_price=None, quantity=5)
    path = f"/api/orders/{order.pk}/fills/"
    first = post(api, path, {"quantity": "2", "price": "10"}, "fill-1")
    again = post(api, path, {"quantity": "2", "price": "10"}, "fill-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    with tenant_context(tenant_a):
        assert Order.objects.get(pk=order.pk).filled_quantity == 2


def test_the_same_key_with_another_body_is_422(api, tenant_a):
    assert post(api, "/api/trades/", TRADE, "k").status_code == 201
    other = post(api, "/api/trades/", TRADE | {"quantity": "11"}, "k")
    assert other.status_code == 422, other.content
    assert "another request" in other.json()["detail"]
    assert post(api, "/api/orders/", ORDER, "k").status_code == 422  # another path, same key
    assert count(Trade, tenant_a) == 1
    assert count(Order, tenant_a) == 0


def test_a_key_longer_than_255_characters_is_400(api, tenant_a):
    response = post(api, "/api/trades/", TRADE, "k" * 256)
    assert response.status_code == 400, response.content
    assert "at most 255" in response.json()["detail"]
    assert post(api, "/api/trades/", TRADE, "").status_code == 400
    assert count(Trade, tenant_a) == 0
    assert count(IdempotencyKey, tenant_a) == 0
    assert post(api, "/api/trades/", TRADE, "k" * 255).status_code == 201


def test_keys_belong_to_their_principal(api, tenant_a):
    colleague = bearer_client(UserFactory(tenant=tenant_a, username="idem-2", role=Role.ADMIN))
    assert post(api, "/api/trades/", TRADE, "shared").status_code == 201
    assert post(colleague, "/api/trades/", TRADE | {"price": "1"}, "shared").status_code == 201
    assert count(Trade, tenant_a) == 2


def test_a_refused_request_keeps_no_key(api, tenant_a):
    assert post(api, "/api/trades/", TRADE | {"quantity": "-1"}, "fix-and-retry").status_code == 400
    assert count(IdempotencyKey, tenant_a) == 0
    assert post(api, "/api/trades/", TRADE, "fix-and-retry").status_code == 201


def test_a_key_older_than_24_hours_is_a_new_request(api, tenant_a):
    assert post(api, "/api/trades/", TRADE, "old").status_code == 201
    with tenant_context(tenant_a), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE tenant_id = %s", [tenant_a.pk]
        )
    again = post(api, "/api/trades/", TRADE | {"quantity": "4"}, "old")
    assert again.status_code == 201, again.content
    assert count(Trade, tenant_a) == 2
    assert count(IdempotencyKey, tenant_a) == 1


def test_keys_are_the_tenants_own(api, tenant_a, tenant_b):
    assert post(api, "/api/trades/", TRADE, "mine").status_code == 201
    assert count(IdempotencyKey, tenant_a) == 1
    assert count(IdempotencyKey, tenant_b) == 0


def test_no_header_no_key(api, tenant_a):
    assert api.post("/api/trades/", TRADE, format="json").status_code == 201
    assert count(IdempotencyKey, tenant_a) == 0


def test_a_key_from_a_token_of_no_tenant_is_401_not_500(admin):
    import uuid

    from rest_framework.test import APIClient

    from tenants.http.auth import tokens_for
    from tenants.http.tokens import TENANT_CLAIM, ApiAccessToken

    # A genuine token (signed, with a session) whose tenant claim names no tenant: the claim's
    # key to `tenants` is what fails first.
    token = ApiAccessToken(tokens_for(admin)["access"])
    token[TENANT_CLAIM] = str(uuid.uuid4())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = post(client, "/api/trades/", TRADE, "k")
    assert response.status_code == 401, response.content
    assert response.json()["detail"] == "Token's tenant does not exist."
