"""A read-only transaction's COMMIT is sent, not waited for (tenants.database.backend):
the answer goes out first, the COMMIT's answer is read after it; a write still waits
for its COMMIT, and a failed one is a 503 with nothing written. On one node and on
the cluster (`make test-citus`)."""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import connections
from psycopg.pq import TransactionStatus
from rest_framework.test import APIClient

from tests.tenants.test_round_trips import SYMBOL, cut_the_socket, request

pytestmark = pytest.mark.citus


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
    for _ in range(50):
        with connections["owner"].cursor() as cursor:
            cursor.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [pid])
            state = cursor.fetchone()[0]
        if state == "idle":
            return state
        time.sleep(0.02)
    return state
