"""The API never issues tokens to the platform tenant (the staff), and audits every attempt.

Issue 20 item 7: `POST /api/auth/token/ {"tenant": "platform", ...}` returned
tokens for a staff account, and wrong passwords there left no trace: an
unaudited password oracle for the most powerful accounts.
"""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.db import connections

from tests.support.clients import PASSWORD
from tests.support.factories import TenantFactory, UserFactory

pytestmark = [
    pytest.mark.django_db(databases=["default", "owner"]),
    pytest.mark.citus,
]  # also on the cluster (make test-citus)

LOGIN = "/api/auth/token/"


def refused_attempts(username: str) -> list[tuple[str, str]]:
    fresh = connections.create_connection("owner")
    try:
        with fresh.cursor() as cursor:
            cursor.execute(
                "SELECT action, result FROM platform_audit WHERE actor = %s ORDER BY id",
                [f"{username} (not logged in)"],
            )
            return cursor.fetchall()
    finally:
        fresh.close()


@pytest.fixture
def staff():
    platform = TenantFactory(slug=settings.PLATFORM_TENANT_SLUG, name="AlphaPulse Platform")
    return UserFactory(
        tenant=platform, username=f"admin-{uuid.uuid4().hex[:8]}", password=PASSWORD, is_staff=True, is_superuser=True
    )


@pytest.mark.parametrize("password", [PASSWORD, "wrong-password"])
def test_staff_credentials_get_no_api_tokens_and_the_attempt_is_audited(client, staff, password):
    response = client.post(
        LOGIN,
        {"tenant": settings.PLATFORM_TENANT_SLUG, "username": staff.username, "password": password},
        content_type="application/json",
    )
    assert response.status_code == 401
    assert "access" not in response.json()
    assert refused_attempts(staff.username) == [("api.staff_login_refused", "refused")]
