"""Timeouts: the app role's limits, and what a client sees when one fires.

A runaway query or a long lock (a migration, a stuck transaction) must end in
a clear JSON 503 with Retry-After, never a 500 or a worker stuck forever; the
next request is served normally.
"""

from __future__ import annotations

import pytest
from django.db import connection, connections

from tenants.constants import APP_ROLE
from tests.support.factories import TradeFactory
from trading.views import TradeViewSet

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

EXPECTED = {
    "statement_timeout": "15s",
    "lock_timeout": "5s",
    "idle_in_transaction_session_timeout": "1min",
}


def test_the_app_role_carries_its_timeouts():
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT rolconfig FROM pg_roles WHERE rolname = %s", [APP_ROLE])
        (config,) = cursor.fetchone()
    assert {"statement_timeout=15s", "lock_timeout=5s", "idle_in_transaction_session_timeout=60s"} <= set(config)
    with connection.cursor() as cursor:
        for name, value in EXPECTED.items():
            cursor.execute("SELECT current_setting(%s)", [name])
            assert cursor.fetchone() == (value,), name


def shorten(setting: str) -> None:
    # Transaction-local, inside the test's own transaction: gone after the test.
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, '150ms', true)", [setting])


def assert_503(response, words: str) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert words in response.json()["detail"]
    assert response["Retry-After"] == "2"


def test_a_runaway_query_ends_in_a_json_503_and_the_next_request_is_served(client_a, user_a, monkeypatch):
    TradeFactory(user=user_a)
    original = TradeViewSet.get_queryset

    def runaway(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(30)")
        return original(self)

    shorten("statement_timeout")
    monkeypatch.setattr(TradeViewSet, "get_queryset", runaway)
    assert_503(client_a.get("/api/trades/"), "statement_timeout")
    monkeypatch.setattr(TradeViewSet, "get_queryset", original)
    served = client_a.get("/api/trades/")
    assert served.status_code == 200 and len(served.json()["results"]) == 1


def test_a_long_lock_wait_ends_in_a_json_503_not_a_hang(client_a, user_a, monkeypatch):
    """Another session (the owner, as a migration would) holds a lock the view needs."""
    original = TradeViewSet.get_queryset

    def waits_for_lock(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(4242)")
        return original(self)

    with connections["owner"].cursor() as owner:
        owner.execute("SELECT pg_advisory_xact_lock(4242)")  # held until the test's rollback
    shorten("lock_timeout")
    monkeypatch.setattr(TradeViewSet, "get_queryset", waits_for_lock)
    assert_503(client_a.get("/api/trades/"), "lock_timeout")


def test_a_timeout_in_the_middlewares_own_queries_is_a_json_503_too(client_a, monkeypatch):
    """The opening round trip (BEGIN, tenant setting, tenant and user lookups) runs too long."""
    import tenants.http.middleware

    original = tenants.http.middleware.identity_queries

    def slow_lookups(*args):
        return [("SELECT pg_sleep(30)", []), *original(*args)]

    shorten("statement_timeout")
    monkeypatch.setattr(tenants.http.middleware, "identity_queries", slow_lookups)
    assert_503(client_a.get("/api/trades/"), "statement_timeout")
