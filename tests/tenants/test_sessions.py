"""Sessions (CONTRACT section 9): every login starts one; logout, logout-all, a password
change and a deactivation end them, and their tokens are refused from the next request.
Refresh tokens rotate; a reused one ends its session. Logins and endings are in the
tenant's audit log. Runs as the app role, on PostgreSQL and on the cluster."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tenants.context import tenant_context
from tenants.models import TenantAuditEvent, UserSession
from tenants.roles import Role
from tests.support.clients import PASSWORD
from tests.support.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.citus]  # also on the cluster (make test-citus)

LOGIN, REFRESH = "/api/auth/token/", "/api/auth/token/refresh/"
LOGOUT, LOGOUT_ALL = "/api/auth/logout/", "/api/auth/logout-all/"


def login(tenant: str = "acme", username: str = "alice", password: str = PASSWORD) -> dict:
    response = APIClient().post(LOGIN, {"tenant": tenant, "username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def bearer(tokens: dict) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client


def refresh(tokens: dict):
    return APIClient().post(REFRESH, {"refresh": tokens["refresh"]}, format="json")


def sessions_of(user) -> list[UserSession]:
    with tenant_context(user.tenant_id):
        return list(UserSession.objects.filter(user=user).order_by("created_at"))


def events(tenant, action: str) -> list[TenantAuditEvent]:
    with tenant_context(tenant):
        return list(TenantAuditEvent.objects.filter(action=action))


def test_every_login_starts_a_session_and_is_audited(user_a, tenant_a):
    login()
    login()
    assert len(sessions_of(user_a)) == 2
    assert all(s.ended_at is None for s in sessions_of(user_a))
    assert [e.actor for e in events(tenant_a, "login.succeeded")] == [str(user_a.pk)] * 2


def test_a_failed_login_is_audited_and_starts_nothing(user_a, tenant_a):
    response = APIClient().post(LOGIN, {"tenant": "acme", "username": "alice", "password": "wrong"}, format="json")
    assert response.status_code == 401
    response = APIClient().post(LOGIN, {"tenant": "acme", "username": "nobody", "password": "x"}, format="json")
    assert response.status_code == 401
    assert sessions_of(user_a) == []
    failed = events(tenant_a, "login.failed")
    assert sorted(e.actor for e in failed) == sorted([str(user_a.pk), "anonymous"])
    assert all("password" not in str(e.details) or e.details == {"username": "alice"} for e in failed)


def test_logout_ends_that_session_only_from_the_next_request(user_a, tenant_a):
    first, second = login(), login()
    assert bearer(first).get("/api/users/me/").status_code == 200
    response = bearer(first).post(LOGOUT, {"refresh": first["refresh"]}, format="json")
    assert response.status_code == 204, response.content
    assert bearer(first).get("/api/users/me/").status_code == 401
    assert refresh(first).status_code == 401
    # The other session goes on.
    assert bearer(second).get("/api/users/me/").status_code == 200
    assert refresh(second).status_code == 200
    (ended,) = events(tenant_a, "session.ended")
    assert ended.details["reason"] == "logout" and ended.actor == str(user_a.pk)


def test_logout_with_someone_elses_refresh_token_is_refused_and_ends_nothing(user_a, tenant_a):
    colleague = UserFactory(tenant=tenant_a, username="carol", password=PASSWORD)
    theirs = login(username="carol")
    mine = login()
    response = bearer(mine).post(LOGOUT, {"refresh": theirs["refresh"]}, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["detail"]
    assert bearer(theirs).get("/api/users/me/").status_code == 200
    assert all(s.ended_at is None for s in sessions_of(colleague))
    assert events(tenant_a, "session.ended") == []


def test_logout_with_another_tenants_refresh_token_is_refused(user_a, user_b):
    theirs = login("globex", "bob")
    response = bearer(login()).post(LOGOUT, {"refresh": theirs["refresh"]}, format="json")
    assert response.status_code == 403
    assert bearer(theirs).get("/api/users/me/").status_code == 200


@pytest.mark.parametrize("body", [{}, {"refresh": "not.a.token"}, {"refresh": "x", "extra": 1}])
def test_logout_with_a_bad_body_is_400(user_a, body):
    tokens = login()
    response = bearer(tokens).post(LOGOUT, body, format="json")
    assert response.status_code == 400, response.content
    assert bearer(tokens).get("/api/users/me/").status_code == 200


def test_logout_all_ends_every_session_of_the_caller_only(user_a, tenant_a):
    UserFactory(tenant=tenant_a, username="carol", password=PASSWORD)
    first, second, colleague = login(), login(), login(username="carol")
    assert bearer(first).post(LOGOUT_ALL).status_code == 204
    for tokens in (first, second):
        assert bearer(tokens).get("/api/users/me/").status_code == 401
        assert refresh(tokens).status_code == 401
    assert bearer(colleague).get("/api/users/me/").status_code == 200
    assert len(events(tenant_a, "session.ended")) == 2


def test_a_password_change_ends_every_other_session(user_a):
    current, other = login(), login()
    body = {"old_password": PASSWORD, "new_password": "another-long-passphrase-42"}
    assert bearer(current).post("/api/users/me/password/", body, format="json").status_code == 204
    assert bearer(current).get("/api/users/me/").status_code == 200
    assert bearer(other).get("/api/users/me/").status_code == 401
    assert refresh(other).status_code == 401


def test_a_refused_password_change_ends_nothing(user_a):
    current, other = login(), login()
    body = {"old_password": "wrong", "new_password": "another-long-passphrase-42"}
    assert bearer(current).post("/api/users/me/password/", body, format="json").status_code == 400
    assert bearer(other).get("/api/users/me/").status_code == 200


def test_deactivation_ends_every_session_and_reactivation_does_not_revive_them(user_a, tenant_a):
    admin = UserFactory(tenant=tenant_a, username="root", password=PASSWORD, role=Role.ADMIN)
    admin_tokens, alice = login(username="root"), login()
    admin_client = bearer(admin_tokens)
    assert admin_client.patch(f"/api/users/{user_a.pk}/", {"is_active": False}, format="json").status_code == 200
    assert admin_client.patch(f"/api/users/{user_a.pk}/", {"is_active": True}, format="json").status_code == 200
    assert bearer(alice).get("/api/users/me/").status_code == 401
    assert refresh(alice).status_code == 401
    assert all(s.ended_at is not None for s in sessions_of(user_a))
    assert all(s.ended_at is None for s in sessions_of(admin))


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(user_a, tenant_a):
    tokens = login()
    rotated = refresh(tokens)
    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != tokens["refresh"]
    # The old refresh token again: someone holds a copy. The whole session ends.
    reused = refresh(tokens)
    assert reused.status_code == 401
    assert "used already" in reused.json()["detail"]
    assert refresh(rotated.json()).status_code == 401
    assert bearer(rotated.json()).get("/api/users/me/").status_code == 401
    (ended,) = events(tenant_a, "session.ended")
    assert ended.details["reason"] == "refresh_reused"


def test_a_token_without_a_session_claim_is_401(user_a):
    from tenants.http.tokens import ApiRefreshToken

    refresh_token = ApiRefreshToken()
    refresh_token["user_id"], refresh_token["tenant_id"] = str(user_a.pk), str(user_a.tenant_id)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh_token.access_token}")
    response = client.get("/api/users/me/")
    assert response.status_code == 401
    assert "sid" in response.json()["detail"]


def test_an_api_key_cannot_log_out(user_a):
    from tenants.api_keys import create_api_key

    with tenant_context(user_a.tenant_id):
        _, key = create_api_key(user_a, name="bot", scopes=["read"], expires_at=None, actor="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.post(LOGOUT_ALL).status_code == 403
