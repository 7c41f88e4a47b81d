"""Concurrent writes on committed rows, as under gunicorn: each request on its own connection,
in its own transaction (these tests run outside pytest-django's per-test transaction).

- 20 concurrent fills of 1 on an order of 10: exactly 10 succeed (201), the
  other 10 are 409; the order is filled with filled_quantity 10, 10 trades
  point at it and the position moved by exactly 10 (on one node and, under
  `make test-citus`, on the cluster);
- N concurrent POSTs with one Idempotency-Key write one trade, and every
  answer is the first one's body.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import connections
from psycopg import sql
from rest_framework.test import APIClient

from tenants.http.auth import tokens_for
from tenants.models import User
from tenants.registry import tenant_tables

INSERT_TENANT = (
    "INSERT INTO tenants (id, name, slug, subscription_tier, status, created_at, updated_at) "
    "VALUES (%s, 'Concurrent fills', %s, 'pro', 'active', now(), now())"
)
INSERT_USER = (
    "INSERT INTO users (id, tenant_id, password, username, email, is_active, is_staff, is_superuser, role, created_at) "
    "VALUES (%s, %s, '', %s, '', true, false, false, %s, now())"
)
INSERT_ORDER = (
    "INSERT INTO orders (id, tenant_id, user_id, created_at, updated_at, symbol, side, order_type, quantity, status) "
    "VALUES (%s, %s, %s, now(), now(), 'RACE', 'buy', 'market', 10, 'new')"
)


@pytest.fixture
def committed(django_db_setup, django_db_blocker) -> Iterator[dict]:
    """A tenant, its admin and trader, and a new market order of 10 for the trader, committed by the owner."""
    tenant, admin, trader, order = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with django_db_blocker.unblock():
        owner = connections["owner"]
        with owner.cursor() as cursor:
            cursor.execute(INSERT_TENANT, [tenant, f"race-{tenant.hex[:8]}"])
            cursor.execute(INSERT_USER, [admin, tenant, "race-admin", "admin"])
            cursor.execute(INSERT_USER, [trader, tenant, "race-trader", "trader"])
            cursor.execute(INSERT_ORDER, [order, tenant, trader])
        try:
            yield {
                "tenant": tenant,
                "order": order,
                "trader": trader,
                "admin_token": tokens_for(User(id=admin, tenant_id=tenant))["access"],
            }
        finally:
            connections["default"].close()
            with owner.cursor() as cursor:
                for table in reversed(tenant_tables()):  # children first
                    delete = sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(sql.Identifier(table))
                    cursor.execute(delete.as_string(None), [tenant])
                cursor.execute("DELETE FROM tenants WHERE id = %s", [tenant])


def race(count: int, token: str, send) -> list:
    """`count` threads, each with its own client and database connection, released at once."""
    start = threading.Barrier(count)
    answers: list = [None] * count

    def one(i: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            start.wait()
            answers[i] = send(client)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def owner_rows(query: str, params: list) -> list[tuple]:
    with connections["owner"].cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def test_twenty_concurrent_fills_of_one_on_an_order_of_ten(committed, django_db_blocker):
    path = f"/api/orders/{committed['order']}/fills/"
    with django_db_blocker.unblock():
        answers = race(20, committed["admin_token"], lambda c: c.post(path, {"quantity": "1", "price": "5"}, "json"))
        codes = sorted(a.status_code for a in answers)
        assert codes == [201] * 10 + [409] * 10, [a.content for a in answers if a.status_code not in (201, 409)]
        tenant = committed["tenant"]
        assert owner_rows("SELECT status, filled_quantity FROM orders WHERE tenant_id = %s", [tenant]) == [
            ("filled", Decimal("10"))
        ]
        assert owner_rows(
            "SELECT count(*), sum(quantity) FROM trades WHERE tenant_id = %s AND order_id = %s",
            [tenant, committed["order"]],
        ) == [(10, Decimal("10"))]
        assert owner_rows(
            "SELECT user_id, quantity, average_price FROM positions WHERE tenant_id = %s AND symbol = 'RACE'",
            [tenant],
        ) == [(committed["trader"], Decimal("10"), Decimal("5"))]


def test_concurrent_posts_with_one_idempotency_key_write_once(committed, django_db_blocker):
    body = {"symbol": "ONCE", "side": "buy", "quantity": "2", "price": "3"}

    def send(client):
        return client.post("/api/trades/", body, "json", HTTP_IDEMPOTENCY_KEY="retry-me-1")

    with django_db_blocker.unblock():
        answers = race(8, committed["admin_token"], send)
        assert {a.status_code for a in answers} == {201}, [a.content for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        tenant = committed["tenant"]
        assert owner_rows("SELECT count(*) FROM trades WHERE tenant_id = %s AND symbol = 'ONCE'", [tenant]) == [(1,)]
        assert owner_rows("SELECT quantity FROM positions WHERE tenant_id = %s AND symbol = 'ONCE'", [tenant]) == [
            (Decimal("2"),)
        ]
