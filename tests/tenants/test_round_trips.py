"""RLS costs no round trip: list, detail, create and update of trades make exactly as
many round trips to PostgreSQL with RLS on as with it off (scenario 1: RLS_ENABLED
false and the app role in rls_bypass_role).

Counted from libpq's protocol trace (tests/support/roundtrips.py), on committed rows and
real transactions: these tests run outside pytest-django's per-test transaction,
so every request sends its own BEGIN and COMMIT, as under gunicorn. Before each
request the connection goes through what Django's request_started does
(`close_if_unusable_or_obsolete`), which the test client skips: a health check
(CONN_HEALTH_CHECKS) would be counted like in production.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator

import pytest
from django.db import connections
from psycopg.pq import TransactionStatus
from rest_framework.test import APIClient

from tenants.api_keys import create_api_key
from tenants.context import tenant_context
from tenants.http.auth import tokens_for
from tenants.management.commands.rls_bypass import app_role_bypasses, set_app_role_bypass
from tenants.models import User
from tests.support.roundtrips import RoundTrips, count_round_trips

SYMBOL = "RT-PROBE"
INSERT_TENANT = (
    "INSERT INTO tenants (id, name, slug, subscription_tier, status, created_at, updated_at) "
    "VALUES (%s, 'Round trips', %s, 'pro', 'active', now(), now())"
)
INSERT_USER = (
    "INSERT INTO users (id, tenant_id, password, username, email, is_active, is_staff, is_superuser, role, created_at) "
    "VALUES (%s, %s, '', 'rt-user', '', true, false, false, 'admin', now())"
)
INSERT_TRADE = (
    "INSERT INTO trades (id, tenant_id, user_id, created_at, symbol, side, quantity, price, executed_at) "
    "VALUES (%s, %s, %s, now(), %s, 'buy', 1, 10, now())"
)


@pytest.fixture(scope="module")
def committed(django_db_setup, django_db_blocker) -> Iterator[dict]:
    """A tenant, its user and a trade, committed by the owner; removed afterwards."""
    tenant, user, trade = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with django_db_blocker.unblock():
        owner = connections["owner"]
        with owner.cursor() as cursor:
            cursor.execute(INSERT_TENANT, [tenant, f"rt-{tenant.hex[:8]}"])
            cursor.execute(INSERT_USER, [user, tenant])
            cursor.execute(INSERT_TRADE, [trade, tenant, user, SYMBOL])
        try:
            # A session (and a key) of the user, committed as the app role.
            token = tokens_for(User(id=user, tenant_id=tenant))["access"]
            with tenant_context(tenant):
                _, key = create_api_key(
                    User(id=user, tenant_id=tenant, role="admin"),
                    name="rt",
                    scopes=["read", "trades:write"],
                    expires_at=None,
                    actor="test",
                )
            yield {"tenant": tenant, "trade": trade, "token": token, "key": key}
        finally:
            set_app_role_bypass(False)
            connections["default"].close()
            with owner.cursor() as cursor:
                cursor.execute("DELETE FROM positions WHERE tenant_id = %s", [tenant])  # the trades moved them

                cursor.execute("DELETE FROM user_sessions WHERE tenant_id = %s", [tenant])
                cursor.execute("DELETE FROM api_keys WHERE tenant_id = %s", [tenant])
                cursor.execute("DELETE FROM audit_events WHERE tenant_id = %s", [tenant])
                cursor.execute("DELETE FROM trades WHERE tenant_id = %s", [tenant])
                cursor.execute("DELETE FROM users WHERE tenant_id = %s", [tenant])
                cursor.execute("DELETE FROM tenants WHERE id = %s", [tenant])


def request(client: APIClient, scenario: str, trade: uuid.UUID):
    if scenario == "list":
        return client.get("/api/trades/?page_size=50"), 200
    if scenario == "detail":
        return client.get(f"/api/trades/{trade}/"), 200
    if scenario == "update":
        return client.patch(f"/api/trades/{trade}/", {"quantity": "2.5"}, format="json"), 200
    body = {"symbol": SYMBOL, "side": "sell", "quantity": "1.5", "price": "12.25"}
    return client.post("/api/trades/", body, format="json"), 201


def trips_of(committed: dict, scenario: str, *, api_key: bool = False) -> RoundTrips:
    client = APIClient()
    if api_key:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {committed['key']}")
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {committed['token']}")
    connection = connections["default"]
    request(client, scenario, committed["trade"])  # warm: the connection is open and reused
    connection.close_if_unusable_or_obsolete()  # Django's request_started, skipped by the test client
    with count_round_trips(connection) as trips:
        response, expected = request(client, scenario, committed["trade"])
    assert response.status_code == expected, response.content
    if scenario == "list":
        assert [row["id"] for row in response.json()["results"]][-1:] == [str(committed["trade"])]
    assert trips.count > 0
    return trips


SCENARIOS = ("list", "detail", "create", "update")


def test_rls_on_and_off_make_the_same_round_trips(committed, django_db_blocker, settings):
    counts: dict[str, dict[str, RoundTrips]] = {"on": {}, "off": {}}
    with django_db_blocker.unblock():
        settings.RLS_ENABLED = True
        assert not app_role_bypasses()
        for scenario in SCENARIOS:
            counts["on"][scenario] = trips_of(committed, scenario)
        settings.RLS_ENABLED = False
        set_app_role_bypass(True)
        try:
            for scenario in SCENARIOS:
                counts["off"][scenario] = trips_of(committed, scenario)
        finally:
            set_app_role_bypass(False)
    shown = json.dumps({v: {s: t.statements() for s, t in by.items()} for v, by in counts.items()}, indent=1)
    on = {s: t.count for s, t in counts["on"].items()}
    off = {s: t.count for s, t in counts["off"].items()}
    print(f"round trips per request: on {on} off {off}")
    assert on == off, shown


def test_an_api_key_request_makes_the_trips_of_a_bearer_token_request(committed, django_db_blocker, settings):
    """The key's row rides the opening round trip as the token's user and session rows do;
    its last use is written at most once per API_KEY_LAST_USED_SECONDS (the warm-up request's)."""
    settings.API_KEY_LAST_USED_SECONDS = 3600
    with django_db_blocker.unblock():
        settings.RLS_ENABLED = True
        bearer = {scenario: trips_of(committed, scenario).count for scenario in ("list", "detail", "create")}
        by_key = {
            scenario: trips_of(committed, scenario, api_key=True).count for scenario in ("list", "detail", "create")
        }
    print(f"round trips per request: bearer {bearer} api key {by_key}")
    assert by_key == bearer == {"list": 3, "detail": 3, "create": 3}


def test_a_tokens_opening_round_trip_is_three_statements(committed, django_db_blocker, settings):
    """BEGIN, SET LOCAL and one statement that reads the tenant, the user and the session together
    (each statement of the pipeline costs CPU in psycopg and in PostgreSQL)."""
    with django_db_blocker.unblock():
        settings.RLS_ENABLED = True
        opening = trips_of(committed, "detail").statements()[0]
    assert [statement.split()[0].upper() for statement in opening] == ["BEGIN", "SET", "SELECT"], opening
    assert opening[2].startswith('SELECT "t"."id"'), opening  # the tenant's row, joined (the trace cuts it short)


def cut_the_socket(connection) -> None:
    """What a database restart or a dropped idle connection leaves: a socket the server no longer answers."""
    fd = connection.connection.pgconn.socket
    with socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def test_a_kept_connection_that_died_is_replaced_within_the_request(committed, django_db_blocker):
    """No health check before each request any more: the first round trip finds the dead
    connection, nothing has run yet, and the request is served on a new one."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {committed['token']}")
    with django_db_blocker.unblock():
        connection = connections["default"]
        assert client.get("/api/trades/").status_code == 200
        old_pid = connection.connection.info.backend_pid
        cut_the_socket(connection)
        response = client.get("/api/trades/")
        assert response.status_code == 200, response.content
        assert str(committed["trade"]) in [row["id"] for row in response.json()["results"]]
        assert connection.connection.info.backend_pid != old_pid


def test_a_write_whose_commit_fails_is_a_503_not_a_retry(committed, django_db_blocker, monkeypatch):
    """A failure once the view has run (here: at the COMMIT of a write) is never replayed and never
    answered as a success: 503, nothing written, and the next request is served."""
    from trading.views import TradeViewSet

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {committed['token']}")
    original = TradeViewSet.create
    calls = []

    def create_then_die(self, request, *args, **kwargs):
        calls.append(1)
        response = original(self, request, *args, **kwargs)
        cut_the_socket(connections["default"])
        return response

    with django_db_blocker.unblock():
        before = trades_of(committed["tenant"])
        monkeypatch.setattr(TradeViewSet, "create", create_then_die)
        response, _ = request(client, "create", committed["trade"])
        assert response.status_code == 503, response.content
        assert response.json()["detail"] == "The database is unavailable. Retry shortly."
        assert len(calls) == 1
        assert trades_of(committed["tenant"]) == before
        monkeypatch.setattr(TradeViewSet, "create", original)
        assert client.get("/api/trades/").status_code == 200


def test_a_read_is_answered_before_its_commit_and_a_lost_commit_costs_nothing(
    committed, django_db_blocker, monkeypatch
):
    """A read-only transaction wrote nothing: its COMMIT is sent without waiting
    (tenants.database.backend), so the answer stands even if the connection dies
    before the COMMIT's own answer comes back; the next request gets a new connection."""
    from trading.views import TradeViewSet

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {committed['token']}")
    original = TradeViewSet.list

    def list_then_die(self, request, *args, **kwargs):
        response = original(self, request, *args, **kwargs)
        cut_the_socket(connections["default"])
        return response

    with django_db_blocker.unblock():
        assert client.get("/api/trades/").status_code == 200
        old_pid = connections["default"].connection.info.backend_pid
        monkeypatch.setattr(TradeViewSet, "list", list_then_die)
        response = client.get("/api/trades/")
        assert response.status_code == 200, response.content
        assert str(committed["trade"]) in [row["id"] for row in response.json()["results"]]
        monkeypatch.setattr(TradeViewSet, "list", original)
        assert client.get("/api/trades/").status_code == 200
        assert connections["default"].connection.info.backend_pid != old_pid


def test_a_reads_commit_is_sent_before_the_response_and_read_after_it(committed, django_db_blocker):
    """When the view's response is ready, the server has the COMMIT (the connection is
    no longer in a transaction there), but the app has not waited for its answer; the
    end of the request reads it."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    handler = WSGIHandler()
    factory = RequestFactory(HTTP_AUTHORIZATION=f"Bearer {committed['token']}")
    connection = connections["default"]
    with django_db_blocker.unblock():
        handler.get_response(factory.get(f"/api/trades/{committed['trade']}/")).close()  # warm
        response = handler.get_response(factory.get(f"/api/trades/{committed['trade']}/"))
        assert response.status_code == 200, response.content
        assert connection.commit_unanswered
        pid = connection.connection.info.backend_pid
        assert server_state_of(pid) == "idle"
        response.close()  # the WSGI server's close: Django's request_finished
        assert not connection.commit_unanswered
        assert connection.connection.info.transaction_status == TransactionStatus.IDLE
        # A write waits for its COMMIT.
        response = handler.get_response(
            factory.post(
                "/api/trades/",
                {"symbol": SYMBOL, "side": "buy", "quantity": "1", "price": "10"},
                content_type="application/json",
            )
        )
        assert response.status_code == 201, response.content
        assert not connection.commit_unanswered
        response.close()


def trades_of(tenant: uuid.UUID) -> int:
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM trades WHERE tenant_id = %s", [tenant])
        return cursor.fetchone()[0]


def server_state_of(pid: int) -> str:
    """pg_stat_activity's state of backend `pid`, as the owner sees it (waiting briefly for the COMMIT to land)."""
    import time

    for _ in range(50):
        with connections["owner"].cursor() as cursor:
            cursor.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [pid])
            state = cursor.fetchone()[0]
        if state == "idle":
            return state
        time.sleep(0.02)
    return state
