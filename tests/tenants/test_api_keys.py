"""API keys (CONTRACT section 9): made by a user for themselves, shown once, stored as an
HMAC, acting as their user within their scopes and never beyond the user's role,
revoked at once, audited with the key's id as actor. Runs as the app role, on
PostgreSQL and on the cluster."""

from __future__ import annotations

import datetime

import pytest
from django.db import connections
from django.utils import timezone
from psycopg import sql
from rest_framework.test import APIClient

from tenants.api_keys import create_api_key
from tenants.context import tenant_context
from tenants.models import ApiKey, TenantAuditEvent
from tenants.roles import Role
from tests.support.clients import bearer_client
from tests.support.factories import TradeFactory, UserFactory
from trading.models import AgentSignal

pytestmark = [pytest.mark.django_db, pytest.mark.citus]  # also on the cluster (make test-citus)

KEYS = "/api/api-keys/"
SIGNAL = {"agent_name": "momentum", "symbol": "TSLA", "signal": "buy", "confidence": "0.8"}


def key_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def audit(tenant, action: str) -> list[TenantAuditEvent]:
    with tenant_context(tenant):
        return list(TenantAuditEvent.objects.filter(action=action))


def make_key(user, scopes=("read",), **extra) -> tuple[ApiKey, str]:
    with tenant_context(user.tenant_id):
        return create_api_key(user, name="bot", scopes=list(scopes), expires_at=extra.get("expires_at"), actor="test")


def test_a_user_creates_a_key_shown_once_and_stored_as_a_hash(client_a, user_a, tenant_a):
    response = client_a.post(KEYS, {"name": "signals bot", "scopes": ["signals:write", "read"]}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "prefix",
        "scopes",
        "expires_at",
        "created_at",
        "last_used_at",
        "revoked_at",
        "user_id",
        "key",
    }
    assert body["key"].startswith(body["prefix"] + "_")
    assert body["prefix"].startswith(f"ap_{tenant_a.pk.hex}_")
    assert body["scopes"] == ["read", "signals:write"]
    listed = client_a.get(KEYS).json()["results"]
    assert [k["id"] for k in listed] == [body["id"]] and "key" not in listed[0]
    with tenant_context(tenant_a):
        stored = ApiKey.objects.get(pk=body["id"])
    secret = body["key"].rsplit("_", 1)[-1]
    assert secret not in stored.hashed_secret and body["key"] not in str(stored.__dict__)
    (event,) = audit(tenant_a, "api_key.created")
    assert event.actor == str(user_a.pk) and event.target_id == body["id"]


def test_an_agent_posts_signals_with_its_key_and_can_do_nothing_else(user_a, tenant_a):
    key_row, key = make_key(user_a, scopes=["signals:write"])
    agent = key_client(key)
    response = agent.post("/api/agent-signals/", SIGNAL, format="json")
    assert response.status_code == 201, response.content
    with tenant_context(tenant_a):
        assert AgentSignal.objects.get(pk=response.json()["id"]).user_id == user_a.pk
    # Beyond its scopes: refused, nothing written.
    assert agent.get("/api/agent-signals/").status_code == 403
    trade = {"symbol": "AAPL", "side": "buy", "quantity": "1", "price": "10"}
    assert agent.post("/api/trades/", trade, format="json").status_code == 403
    # People-only actions: no key may make keys, or change a password.
    assert agent.post(KEYS, {"name": "x", "scopes": ["read"]}, format="json").status_code == 403


def test_a_key_never_goes_beyond_its_users_role(tenant_a):
    # A trader's key with orders:execute cannot execute: the role does not reach it.
    trader = UserFactory(tenant=tenant_a, username="trader", role=Role.TRADER)
    _, key = make_key(trader, scopes=["trades:write", "read"])
    trade = TradeFactory(user=trader)
    response = key_client(key).delete(f"/api/trades/{trade.pk}/")
    assert response.status_code == 403
    assert "trader" in response.json()["detail"]


def test_a_viewers_keys_hold_the_read_scope_only(tenant_a):
    viewer = UserFactory(tenant=tenant_a, username="viewer", role=Role.VIEWER)
    client = bearer_client(viewer)
    assert client.post(KEYS, {"name": "w", "scopes": ["signals:write"]}, format="json").status_code == 400
    response = client.post(KEYS, {"name": "r", "scopes": ["read"]}, format="json")
    assert response.status_code == 201, response.content
    assert key_client(response.json()["key"]).get("/api/trades/").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": ["root"]},
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"},
        {"name": "x", "scopes": ["read"], "user": "someone"},
        {"scopes": ["read"]},
    ],
    ids=["unknown-scope", "no-scope", "expired", "extra-field", "no-name"],
)
def test_bad_input_is_400_and_makes_no_key(client_a, tenant_a, body):
    response = client_a.post(KEYS, body, format="json")
    assert response.status_code == 400, response.content
    with tenant_context(tenant_a):
        assert ApiKey.objects.count() == 0


def test_revocation_holds_from_the_next_request_and_is_audited(client_a, user_a, tenant_a):
    key_row, key = make_key(user_a)
    assert key_client(key).get("/api/trades/").status_code == 200
    assert client_a.delete(f"{KEYS}{key_row.pk}/").status_code == 204
    response = key_client(key).get("/api/trades/")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    (event,) = audit(tenant_a, "api_key.revoked")
    assert event.target_id == str(key_row.pk)


def test_an_admin_lists_and_revokes_every_key_others_only_their_own(tenant_a, user_a):
    trader = UserFactory(tenant=tenant_a, username="trader", role=Role.TRADER)
    admins_key, _ = make_key(user_a)
    traders_key, _ = make_key(trader)
    assert {k["id"] for k in bearer_client(user_a).get(KEYS).json()["results"]} == {
        str(admins_key.pk),
        str(traders_key.pk),
    }
    trader_client = bearer_client(trader)
    assert [k["id"] for k in trader_client.get(KEYS).json()["results"]] == [str(traders_key.pk)]
    assert trader_client.delete(f"{KEYS}{admins_key.pk}/").status_code == 403
    with tenant_context(tenant_a):
        assert ApiKey.objects.get(pk=admins_key.pk).revoked_at is None
    assert bearer_client(user_a).delete(f"{KEYS}{traders_key.pk}/").status_code == 204


def test_refused_keys_are_401(user_a, tenant_a, user_b):
    _, good = make_key(user_a)
    _, expiring = make_key(user_a, expires_at=timezone.now() + datetime.timedelta(seconds=1))
    with tenant_context(tenant_a):
        ApiKey.objects.filter(name="bot").exclude(expires_at=None).update(
            expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    # Another tenant's id in front of this tenant's prefix and secret.
    _, other = make_key(user_b)
    swapped = other.split("_")[0] + "_" + other.split("_")[1] + "_" + good.split("_", 2)[2]
    for key, words in [(tampered, "unknown"), (expiring, "expired"), (swapped, "unknown")]:
        response = key_client(key).get("/api/trades/")
        assert response.status_code == 401, (key, response.content)
        assert words in response.json()["detail"]
    with tenant_context(tenant_a):
        type(user_a).objects.filter(pk=user_a.pk).update(is_active=False)
    response = key_client(good).get("/api/trades/")
    assert response.status_code == 401 and "inactive" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    ["Api-Key", "Api-Key ", "Api-Key not-a-key", "Api-Key ap_zz_zz_zz", "Api-Key ap_" + "0" * 32 + "_abc_def"],
)
def test_a_malformed_api_key_header_is_401(user_a, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/trades/")
    assert response.status_code == 401
    assert response.json()["detail"]


def test_the_audit_actor_of_a_keys_request_is_the_key(user_a, tenant_a):
    key_row, key = make_key(user_a, scopes=["trades:write", "read"])
    trade = TradeFactory(user=user_a)
    response = key_client(key).patch(f"/api/trades/{trade.pk}/", {"quantity": "3"}, format="json")
    assert response.status_code == 200, response.content
    (event,) = audit(tenant_a, "trade.changed")
    assert event.actor == f"api_key:{key_row.pk}"


def test_last_use_is_recorded_at_most_once_per_interval_and_reads_stay_read_only(user_a, tenant_a, settings):
    key_row, key = make_key(user_a)
    agent = key_client(key)

    def last_used(ago: datetime.timedelta | None = None):
        with tenant_context(tenant_a):
            if ago is not None:
                ApiKey.objects.filter(pk=key_row.pk).update(last_used_at=timezone.now() - ago)
            return ApiKey.objects.get(pk=key_row.pk).last_used_at

    # A GET (a READ ONLY transaction) still gets its key's use recorded, after it.
    assert agent.get("/api/trades/").status_code == 200
    assert last_used() is not None
    settings.API_KEY_LAST_USED_SECONDS = 300
    recent = last_used(datetime.timedelta(seconds=10))
    assert agent.get("/api/trades/").status_code == 200
    assert last_used() == recent  # within the interval: no write
    old = last_used(datetime.timedelta(hours=1))
    assert agent.get("/api/trades/").status_code == 200
    assert last_used() > old


def test_the_app_role_cannot_delete_keys_or_sessions(tenant_a):
    from django.db import DatabaseError, transaction

    for table in ("api_keys", "user_sessions"):
        with pytest.raises(DatabaseError, match="permission denied"):
            with transaction.atomic(), connections["default"].cursor() as cursor:
                cursor.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)).as_string(None))


def test_a_keys_requests_count_against_the_key_as_well_as_the_tenant(user_a, client_a, settings):
    settings.API_KEY_RATE_LIMIT = "2/min"
    _, key = make_key(user_a)
    agent = key_client(key)
    assert [agent.get("/api/trades/").status_code for _ in range(3)] == [200, 200, 429]
    # The tenant's own budget is not spent by the key's limit: its people go on.
    assert client_a.get("/api/trades/").status_code == 200
