"""Every role x every API route x every method, derived from the URL conf and the
access table (tenants/access.py), as the app role.

- Every route under /api/ (but the public ones: login, refresh, schema, docs)
  names its resource, and every method it offers maps to a rule: a new
  endpoint without a rule fails here (and is refused to everyone at run time).
- For each role, each route and method answers as the table says: a role
  that does not reach the action gets a 403 and nothing changes (the
  resource's rows and the audit log are as before); a role that reaches it
  is not refused (the row it acts on is its own, so `own` reaches it too).
- A finer action a view picks from the body (an order PATCH that executes)
  needs no more than the method's own action lets through the database's
  read-only guard (tenants.http.permissions.write_guard).
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from drf_spectacular.generators import EndpointEnumerator

from tenants.access import ACCESS, Reach, action_for, rule_for
from tenants.context import tenant_context
from tenants.http.middleware import PUBLIC_API_PREFIXES
from tenants.models import TenantAuditEvent
from tenants.roles import Role
from tests.support.clients import bearer_client
from tests.support.factories import (
    AgentSignalFactory,
    ApiKeyFactory,
    OrderFactory,
    PortfolioSnapshotFactory,
    PositionFactory,
    RiskMetricFactory,
    TradeFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.citus]  # also on the cluster (make test-citus)

FACTORY_PASSWORD = UserFactory.password  # every factory user's password


def api_endpoints() -> list[tuple[str, str, type, str | None]]:
    """(path, method, view class, DRF action) of every tenant API endpoint."""
    found = []
    for path, _, method, callback in EndpointEnumerator().get_api_endpoints():
        if not path.startswith("/api/") or path.startswith(PUBLIC_API_PREFIXES):
            continue
        actions = getattr(callback, "actions", None) or {}
        found.append((path, method, getattr(callback, "cls", None), actions.get(method.lower())))
    return found


ENDPOINTS = api_endpoints()
ROLES = [Role.ADMIN, Role.TRADER, Role.VIEWER]


@pytest.mark.parametrize(
    ("path", "method", "view", "view_action"), ENDPOINTS, ids=[f"{m} {p}" for p, m, _, _ in ENDPOINTS]
)
def test_every_route_and_method_has_a_rule(path, method, view, view_action):
    resource = getattr(view, "access_resource", None)
    assert resource in ACCESS, f"{method} {path}: its view names no resource of tenants/access.py"
    action = action_for(method, view_action)
    assert rule_for(resource, action) is not None, f"{method} {path}: no rule for '{action}' on {resource}"


def test_every_rule_is_used_or_awaited():
    """No dead rules: each (resource, action) is some route's, or a finer action a view picks."""
    used = {(getattr(v, "access_resource", None), action_for(m, a)) for _, m, v, a in ENDPOINTS}
    picked_by_views = {("orders", "execute")}
    awaited = {("orders", "fills"), ("api-keys", "read"), ("api-keys", "create"), ("api-keys", "delete")}
    rules = {(resource, action) for resource, actions in ACCESS.items() for action in actions}
    assert rules - used - picked_by_views - awaited == set()


def test_an_execution_needs_no_role_the_change_route_lets_past_the_database():
    assert ACCESS["orders"]["execute"].roles() <= ACCESS["orders"]["change"].roles()


# -- the behaviour, role by role -------------------------------------------------------

ROWS = {
    "trades": lambda user: TradeFactory(user=user),
    "orders": lambda user: OrderFactory(user=user),
    "positions": lambda user: PositionFactory(user=user),
    "portfolio-snapshots": lambda user: PortfolioSnapshotFactory(user=user),
    "risk-metrics": lambda user: RiskMetricFactory(user=user),
    "agent-signals": lambda user: AgentSignalFactory(user=user),
    # A colleague to act on: nobody changes their own role.
    "users": lambda user: UserFactory(tenant=user.tenant, username=f"colleague-{uuid.uuid4().hex[:6]}", role="trader"),
    "api-keys": lambda user: ApiKeyFactory(user=user),
}
SIGNAL = {"agent_name": "momentum", "symbol": "TSLA", "signal": "hold", "confidence": "0.5"}
BODIES = {
    "trades": {"symbol": "AAPL", "side": "buy", "quantity": "10", "price": "189.5"},
    "orders": {"symbol": "MSFT", "side": "sell", "order_type": "limit", "quantity": "3", "limit_price": "410"},
    "positions": {"symbol": "NVDA", "quantity": "50", "average_price": "120.25"},
    "portfolio-snapshots": {"total_value": "1000.00", "cash": "400.00", "positions_value": "600.00"},
    "risk-metrics": {"metric": "sharpe", "value": "1.25"},
    "agent-signals": SIGNAL,
    # A viewer's keys may hold `read` only: this body is every role's.
    "api-keys": {"name": "bot", "scopes": ["read"]},
    # logout-all takes no body; logout's {} is a 400 (no refresh token), past the access check.
    "sessions": {},
}


def body_for(resource: str, method: str, view_action: str | None):
    if resource == "users":
        if view_action == "password":
            return {"old_password": FACTORY_PASSWORD, "new_password": "a-long-and-fine-passphrase"}
        if method == "POST":
            return {"username": f"new-{uuid.uuid4().hex[:6]}", "password": "a-long-and-fine-passphrase"}
        return {"email": "changed@example.com"}
    if view_action == "bulk":
        return [SIGNAL]
    return BODIES[resource]


def state(view, tenant) -> tuple[list[dict], int]:
    with tenant_context(tenant):
        return list(view.queryset.model.objects.order_by("pk").values()), TenantAuditEvent.objects.count()


CASES = [(role, *endpoint) for endpoint in ENDPOINTS for role in ROLES]


@pytest.mark.parametrize(
    ("role", "path", "method", "view", "view_action"), CASES, ids=[f"{r}-{m} {p}" for r, p, m, _, _ in CASES]
)
def test_each_role_gets_what_the_table_says(tenant_a, role, path, method, view, view_action):
    resource = view.access_resource
    rule = rule_for(resource, action_for(method, view_action))
    # Another admin, so that no change meets the last-admin rule.
    UserFactory(tenant=tenant_a, username="other-admin", role=Role.ADMIN)
    actor = UserFactory(tenant=tenant_a, username=f"actor-{role}", role=role)
    if "{" in path:
        row = ROWS[resource](actor)
        path = re.sub(r"\{[^}]+\}", str(row.pk), path)
    client = bearer_client(actor)
    data = None if method in ("GET", "DELETE") else body_for(resource, method, view_action)
    before = state(view, tenant_a)
    payload = "" if data is None else json.dumps(data)
    response = client.generic(method, path, data=payload, content_type="application/json")
    assert response.status_code < 500, response.content
    if rule.reach(role) is Reach.NONE:
        assert response.status_code == 403, f"{role} {method} {path}: {response.status_code} {response.content[:200]}"
        assert response.json()["detail"]
        assert state(view, tenant_a) == before
    else:
        assert response.status_code != 403, f"{role} {method} {path}: {response.content[:300]}"
