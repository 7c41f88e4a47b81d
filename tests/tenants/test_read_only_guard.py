"""The database as the second guard (CONTRACT section 9): requests that may not write
run in a READ ONLY transaction, set in the request's opening round trip.

- every GET/HEAD/OPTIONS: `BEGIN READ ONLY`;
- a write through a route the user's role may not write through (a viewer's
  POST, a trader's trade amendment): the guard statement turns the
  transaction read-only before the view runs.
With the API check switched off (RoleAccess allows everything), such a write
reaches PostgreSQL, which refuses it (SQLSTATE 25006): the answer is a 403,
never a 500, and nothing is written. Writes the role may make are untouched.

These run on committed rows outside pytest-django's per-test transaction,
as under gunicorn: inside an outer transaction (the test's), a request is a
savepoint and keeps its outer transaction's mode (tenants.context).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.db import connections
from rest_framework.test import APIClient

from alphapulse.exceptions import READ_ONLY_DETAIL
from tenants.http.auth import tokens_for
from tenants.http.permissions import RoleAccess
from tenants.models import User
from trading import views as trading_views
from trading.models import Trade

pytestmark = pytest.mark.citus  # also on the cluster (make test-citus)

INSERT_TENANT = (
    "INSERT INTO tenants (id, name, slug, subscription_tier, status, created_at, updated_at) "
    "VALUES (%s, 'Read only', %s, 'pro', 'active', now(), now())"
)
INSERT_USER = (
    "INSERT INTO users (id, tenant_id, password, username, email, is_active, is_staff, is_superuser, role, created_at) "
    "VALUES (%s, %s, '', %s, '', true, false, false, %s, now())"
)
INSERT_TRADE = (
    "INSERT INTO trades (id, tenant_id, user_id, created_at, symbol, side, quantity, price, executed_at) "
    "VALUES (%s, %s, %s, now(), 'RO-PROBE', 'buy', 1, 10, now())"
)
TRADE = {"symbol": "RO-NEW", "side": "buy", "quantity": "1", "price": "1"}


@pytest.fixture(scope="module")
def committed(django_db_setup, django_db_blocker) -> Iterator[dict]:
    """A tenant with an admin, a trader and a viewer, and one trade, committed by the owner."""
    tenant, trade = uuid.uuid4(), uuid.uuid4()
    people = {role: uuid.uuid4() for role in ("admin", "trader", "viewer")}
    with django_db_blocker.unblock():
        owner = connections["owner"]
        with owner.cursor() as cursor:
            cursor.execute(INSERT_TENANT, [tenant, f"ro-{tenant.hex[:8]}"])
            for role, user in people.items():
                cursor.execute(INSERT_USER, [user, tenant, f"ro-{role}", role])
            cursor.execute(INSERT_TRADE, [trade, tenant, people["trader"]])
        try:
            yield {"tenant": tenant, "trade": trade, "people": people}
        finally:
            connections["default"].close()
            with owner.cursor() as cursor:
                cursor.execute("DELETE FROM tenants WHERE id = %s", [tenant])  # cascades to every row


def client_of(committed: dict, role: str) -> APIClient:
    client = APIClient()
    user = User(id=committed["people"][role], tenant_id=committed["tenant"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access']}")
    return client


def trades(committed: dict) -> list[tuple]:
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT id, symbol, price FROM trades WHERE tenant_id = %s ORDER BY id", [committed["tenant"]])
        return cursor.fetchall()


def audit_events(committed: dict, action: str = "%") -> int:
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM audit_events WHERE tenant_id = %s AND action LIKE %s", [committed["tenant"], action]
        )
        return cursor.fetchone()[0]


@pytest.fixture
def no_api_check(monkeypatch):
    """The API check switched off: every role may do everything, as far as DRF is concerned."""
    monkeypatch.setattr(RoleAccess, "has_permission", lambda self, request, view: True)
    monkeypatch.setattr(RoleAccess, "has_object_permission", lambda self, request, view, obj: True)


def test_with_the_api_check_off_the_database_refuses_a_viewers_write(committed, django_db_blocker, no_api_check):
    with django_db_blocker.unblock():
        before = trades(committed)
        response = client_of(committed, "viewer").post("/api/trades/", TRADE, format="json")
        assert response.status_code == 403, response.content
        assert response.json() == {"detail": READ_ONLY_DETAIL}
        assert trades(committed) == before


def test_with_the_api_check_off_the_database_refuses_a_traders_trade_amendment(
    committed, django_db_blocker, no_api_check
):
    with django_db_blocker.unblock():
        before, events = trades(committed), audit_events(committed)
        url = f"/api/trades/{committed['trade']}/"
        response = client_of(committed, "trader").patch(url, {"price": "1.00"}, format="json")
        assert response.status_code == 403, response.content
        assert response.json() == {"detail": READ_ONLY_DETAIL}
        assert client_of(committed, "trader").delete(url).status_code == 403
        assert trades(committed) == before
        assert audit_events(committed) == events


def test_a_write_inside_a_get_is_refused_by_the_database(committed, django_db_blocker, monkeypatch):
    """A GET runs READ ONLY whoever asks, the admin included."""

    def list_that_writes(self, request, *args, **kwargs):
        Trade.objects.create(user_id=committed["people"]["admin"], symbol="RO-GET", side="buy", quantity=1, price=1)
        raise AssertionError("the write above should have been refused")

    monkeypatch.setattr(trading_views.TradeViewSet, "list", list_that_writes)
    with django_db_blocker.unblock():
        before = trades(committed)
        response = client_of(committed, "admin").get("/api/trades/")
        assert response.status_code == 403, response.content
        assert trades(committed) == before


def test_writes_the_role_may_make_are_not_read_only(committed, django_db_blocker):
    with django_db_blocker.unblock():
        created = client_of(committed, "trader").post("/api/trades/", TRADE, format="json")
        assert created.status_code == 201, created.content
        url = f"/api/trades/{created.json()['id']}/"
        assert client_of(committed, "admin").patch(url, {"price": "2"}, format="json").status_code == 200
        assert client_of(committed, "admin").delete(url).status_code == 204
        assert client_of(committed, "viewer").get("/api/trades/").status_code == 200


def test_a_viewer_still_changes_their_own_password(committed, django_db_blocker):
    """Everyone may write through this route: no guard, and the change is recorded."""
    with django_db_blocker.unblock():
        with connections["owner"].cursor() as cursor:
            cursor.execute(
                "UPDATE users SET password = %s WHERE id = %s",
                [_hashed("the-old-passphrase"), committed["people"]["viewer"]],
            )
        events = audit_events(committed, "user.changed")
        body = {"old_password": "the-old-passphrase", "new_password": "a-long-and-fine-passphrase"}
        response = client_of(committed, "viewer").post("/api/users/me/password/", body, format="json")
        assert response.status_code == 204, response.content
        # (The viewer's other sessions end too: session.ended events of their own.)
        assert audit_events(committed, "user.changed") == events + 1


def _hashed(password: str) -> str:
    from django.contrib.auth.hashers import make_password

    return make_password(password)
