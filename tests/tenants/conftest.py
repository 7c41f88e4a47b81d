"""Fixtures of the tests/tenants modules that measure requests on committed rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.db import connections

from tenants.api_keys import create_api_key
from tenants.context import tenant_context
from tenants.http.auth import tokens_for
from tenants.management.commands.rls_bypass import set_app_role_bypass
from tenants.models import User

COMMITTED_SYMBOL = "RT-PROBE"
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
            cursor.execute(INSERT_TRADE, [trade, tenant, user, COMMITTED_SYMBOL])
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
