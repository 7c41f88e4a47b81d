"""GET /api/audit-events/ (CONTRACT section 9): the tenant's audit log, for its admins
only, newest first, filtered by action, actor and since, cursor-paginated; another
tenant's events never show. Runs as the app role."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from tenants.context import tenant_context
from tenants.models import TenantAuditEvent
from tenants.roles import Role
from tests.support.clients import bearer_client
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db


def event(tenant, action: str, actor: str, at: datetime.datetime) -> None:
    # Written once with its time (the app role may not UPDATE an event afterwards).
    with tenant_context(tenant):
        TenantAuditEvent(action=action, actor=actor, target_type="user", target_id="t", created_at=at).save()


@pytest.fixture
def log(tenant_a, tenant_b):
    now = timezone.now()
    event(tenant_a, "user.created", "u-1", now - datetime.timedelta(hours=3))
    event(tenant_a, "trade.changed", "u-2", now - datetime.timedelta(hours=2))
    event(tenant_a, "trade.deleted", "u-1", now - datetime.timedelta(hours=1))
    event(tenant_b, "user.created", "other-tenant", now)
    return now


def test_admin_reads_the_log_newest_first(client_a, log):
    body = client_a.get("/api/audit-events/").json()
    assert [e["action"] for e in body["results"]] == ["trade.deleted", "trade.changed", "user.created"]
    assert set(body["results"][0]) == {"id", "action", "actor", "target_type", "target_id", "details", "created_at"}
    assert {"next", "previous"} <= set(body)


def test_filters_action_actor_since(client_a, log):
    def actions(**query):
        return [e["action"] for e in client_a.get("/api/audit-events/", query).json()["results"]]

    assert actions(action="trade.changed") == ["trade.changed"]
    assert actions(actor="u-1") == ["trade.deleted", "user.created"]
    since = (log - datetime.timedelta(hours=2, minutes=30)).isoformat()
    assert actions(since=since) == ["trade.deleted", "trade.changed"]
    assert client_a.get("/api/audit-events/", {"since": "yesterday-ish"}).status_code == 400


def test_pages_follow_the_cursor(client_a, log):
    first = client_a.get("/api/audit-events/", {"page_size": 2}).json()
    assert len(first["results"]) == 2
    second = client_a.get(first["next"]).json()
    assert [e["action"] for e in second["results"]] == ["user.created"]


@pytest.mark.parametrize("role", [Role.TRADER, Role.VIEWER])
def test_only_admins_read_the_log(tenant_a, log, role):
    client = bearer_client(UserFactory(tenant=tenant_a, username=f"x-{role}", role=role))
    response = client.get("/api/audit-events/")
    assert response.status_code == 403
    assert f"{role} may not read the tenant's audit log (admins only)" in response.json()["detail"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_log_cannot_be_written_through_the_api(client_a, log, tenant_a, method):
    with tenant_context(tenant_a):
        before = list(TenantAuditEvent.objects.values())
        some = before[0]["id"]
    assert getattr(client_a, method)("/api/audit-events/", {}, format="json").status_code == 405
    assert getattr(client_a, method)(f"/api/audit-events/{some}/", {}, format="json").status_code == 404
    with tenant_context(tenant_a):
        assert list(TenantAuditEvent.objects.values()) == before
