"""API keys in the staff admin: listed for every tenant (never a secret), revoked by an
action that goes through tenants.api_keys (the tenant's log) and the platform trail.
Admin requests run on the owner connection, so the data is made there."""

from __future__ import annotations

import pytest
from django.conf import settings

from tenants.api_keys import create_api_key, visible_prefix
from tenants.context import tenant_context
from tenants.models import ApiKey, TenantAuditEvent
from tests.support.staff import admin_login, owner_tenant, owner_user

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


@pytest.fixture
def staff_client(client):
    platform = owner_tenant(settings.PLATFORM_TENANT_SLUG, name="AlphaPulse platform")
    owner_user(platform, "staff", is_staff=True)
    assert admin_login(client, "staff").status_code == 302
    return client


@pytest.fixture
def key():
    tenant = owner_tenant("acme", name="Acme")
    user = owner_user(tenant, "alice")
    with tenant_context(tenant, using="owner"):
        return create_api_key(user, name="bot", scopes=["read"], expires_at=None, actor="test", using="owner")


def test_staff_list_keys_without_their_secret_and_revoke_them(staff_client, key):
    row, secret = key
    page = staff_client.get("/admin/tenants/apikey/").content.decode()
    assert visible_prefix(row.tenant_id, row.prefix) in page
    assert secret.rsplit("_", 1)[-1] not in page and row.hashed_secret not in page
    assert staff_client.get("/admin/tenants/apikey/add/").status_code == 403
    response = staff_client.post(
        "/admin/tenants/apikey/", {"action": "revoke", "_selected_action": [str(row.pk)]}, follow=True
    )
    assert response.status_code == 200
    assert ApiKey.all_tenants.using("owner").get(pk=row.pk).revoked_at is not None
    with tenant_context(row.tenant_id, using="owner"):
        assert TenantAuditEvent.objects.using("owner").filter(action="api_key.revoked").count() == 1
