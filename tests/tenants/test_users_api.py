"""Users managed by the tenant's own admin (CONTRACT section 9), as the app role.

An admin adds users (Django's password validators: 400 naming the rule;
the tier's seats: 409 past them), changes their role, `is_active` and
email; the last active admin cannot be demoted or deactivated (409); bad
input is a 400 that changes nothing (unknown role, demoting oneself, a
tenant_id or is_staff in the body), another tenant's user a 404. A role
change or deactivation holds from the user's next request. Everyone
changes their own password. Each change is in the tenant's audit log,
with its actor; a refused one leaves nothing there.
"""

from __future__ import annotations

import pytest

from tenants.context import tenant_context
from tenants.models import TenantAuditEvent, User
from tenants.roles import Role
from tests.support.clients import bearer_client
from tests.support.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "a-long-and-fine-passphrase"


@pytest.fixture
def admin(tenant_a):
    return UserFactory(tenant=tenant_a, username="root-admin", role=Role.ADMIN)


@pytest.fixture
def trader(tenant_a):
    return UserFactory(tenant=tenant_a, username="tina", role=Role.TRADER)


@pytest.fixture
def as_admin(admin):
    return bearer_client(admin)


def users(tenant) -> dict[str, tuple[str, bool]]:
    with tenant_context(tenant):
        return {u.username: (u.role, u.is_active) for u in User.objects.all()}


def events(tenant) -> list[TenantAuditEvent]:
    with tenant_context(tenant):
        return list(TenantAuditEvent.objects.order_by("created_at"))


def test_admin_adds_a_user_with_a_role(as_admin, admin, tenant_a):
    body = {"username": "vera", "password": GOOD_PASSWORD, "email": "vera@acme.example", "role": "viewer"}
    response = as_admin.post("/api/users/", body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["username"], created["role"], created["is_active"]) == ("vera", "viewer", True)
    assert "password" not in created
    assert users(tenant_a)["vera"] == ("viewer", True)
    (event,) = events(tenant_a)
    assert (event.action, event.actor, event.target_id) == ("user.created", str(admin.pk), created["id"])
    assert event.details == {"username": "vera", "role": "viewer", "email": "vera@acme.example"}


def test_a_new_user_without_a_role_is_a_trader(as_admin):
    response = as_admin.post("/api/users/", {"username": "tom", "password": GOOD_PASSWORD}, format="json")
    assert response.json()["role"] == "trader"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"password": "short"}, "password", "too short"),
        ({"role": "root"}, "role", "not a valid choice"),
        ({"tenant_id": "00000000-0000-0000-0000-000000000001"}, "tenant_id", "cannot be set here"),
        ({"is_staff": True}, "is_staff", "cannot be set here"),
        ({"is_superuser": True}, "is_superuser", "cannot be set here"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"username": "root-admin"}, "username", "already has a user"),
    ],
)
def test_bad_input_on_create_is_400_and_creates_nothing(as_admin, tenant_a, body, field, words):
    before = users(tenant_a)
    response = as_admin.post("/api/users/", {"username": "eve", "password": GOOD_PASSWORD, **body}, format="json")
    assert response.status_code == 400, response.content
    assert words in str(response.json()[field])
    assert users(tenant_a) == before
    assert events(tenant_a) == []


@pytest.mark.parametrize("role", [Role.TRADER, Role.VIEWER])
def test_only_an_admin_adds_or_changes_users(tenant_a, admin, role):
    someone = UserFactory(tenant=tenant_a, username=f"{role}-x", role=role)
    client = bearer_client(someone)
    before = users(tenant_a)
    response = client.post("/api/users/", {"username": "eve", "password": GOOD_PASSWORD}, format="json")
    assert response.status_code == 403
    assert f"{role} may not add users (admins only)" in response.json()["detail"]
    assert client.patch(f"/api/users/{admin.pk}/", {"role": "viewer"}, format="json").status_code == 403
    assert users(tenant_a) == before
    assert client.get("/api/users/").status_code == 200


def test_seats_of_the_tier_are_counted_on_active_users(db):
    tiny = TenantFactory(slug="tiny", subscription_tier="free")
    boss = UserFactory(tenant=tiny, username="boss", role=Role.ADMIN)
    client = bearer_client(boss)
    for name in ("two", "three"):
        assert (
            client.post("/api/users/", {"username": name, "password": GOOD_PASSWORD}, format="json").status_code == 201
        )
    refused = client.post("/api/users/", {"username": "four", "password": GOOD_PASSWORD}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "seat_limit"
    assert "all the seats of its free tier (3)" in refused.json()["detail"]
    assert "four" not in users(tiny)
    three = users(tiny)
    with tenant_context(tiny):
        three_id = User.objects.get(username="three").pk
    assert client.patch(f"/api/users/{three_id}/", {"is_active": False}, format="json").status_code == 200
    assert client.post("/api/users/", {"username": "four", "password": GOOD_PASSWORD}, format="json").status_code == 201
    # Reactivating would make four active users on three seats.
    back = client.patch(f"/api/users/{three_id}/", {"is_active": True}, format="json")
    assert back.status_code == 409
    assert users(tiny)["three"] == (three["three"][0], False)


def test_seat_limits_come_from_settings(db, settings):
    settings.TENANT_SEAT_LIMITS = {**settings.TENANT_SEAT_LIMITS, "pro": 1}
    tenant = TenantFactory(slug="solo", subscription_tier="pro")
    client = bearer_client(UserFactory(tenant=tenant, username="boss", role=Role.ADMIN))
    response = client.post("/api/users/", {"username": "two", "password": GOOD_PASSWORD}, format="json")
    assert response.status_code == 409


def test_admin_changes_role_email_and_active_and_it_is_audited(as_admin, admin, trader, tenant_a):
    url = f"/api/users/{trader.pk}/"
    response = as_admin.patch(url, {"role": "viewer", "email": "tina@new.example"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["role"], response.json()["email"]) == ("viewer", "tina@new.example")
    (event,) = events(tenant_a)
    assert (event.action, event.actor, event.target_id) == ("user.changed", str(admin.pk), str(trader.pk))
    assert event.details == {
        "before": {"role": "trader", "email": "tina@example.com"},
        "after": {"role": "viewer", "email": "tina@new.example"},
    }


def test_a_role_change_and_a_deactivation_hold_from_the_next_request(as_admin, trader):
    client = bearer_client(trader)
    order = {"symbol": "AAPL", "side": "buy", "order_type": "market", "quantity": "1", "limit_price": None}
    assert client.post("/api/orders/", order, format="json").status_code == 201
    assert as_admin.patch(f"/api/users/{trader.pk}/", {"role": "viewer"}, format="json").status_code == 200
    assert client.post("/api/orders/", order, format="json").status_code == 403
    assert client.get("/api/users/me/").json()["role"] == "viewer"
    assert as_admin.patch(f"/api/users/{trader.pk}/", {"is_active": False}, format="json").status_code == 200
    assert client.get("/api/orders/").status_code == 403


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(as_admin, admin, tenant_a):
    for body in ({"role": "trader"}, {"is_active": False}):
        response = as_admin.patch(f"/api/users/{admin.pk}/", body, format="json")
        assert response.status_code == 409, response.content
        assert response.json()["code"] == "last_active_admin"
    assert users(tenant_a)["root-admin"] == ("admin", True)
    assert events(tenant_a) == []


def test_an_admin_cannot_demote_or_deactivate_themselves(as_admin, admin, tenant_a):
    UserFactory(tenant=tenant_a, username="second-admin", role=Role.ADMIN)
    for body, field in (({"role": "viewer"}, "role"), ({"is_active": False}, "is_active")):
        response = as_admin.patch(f"/api/users/{admin.pk}/", body, format="json")
        assert response.status_code == 400
        assert "ask another admin" in str(response.json()[field])
    assert users(tenant_a)["root-admin"] == ("admin", True)


def test_another_admin_may_be_demoted_while_one_remains(as_admin, tenant_a):
    other = UserFactory(tenant=tenant_a, username="second-admin", role=Role.ADMIN)
    assert as_admin.patch(f"/api/users/{other.pk}/", {"role": "trader"}, format="json").status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"role": "root"}, {"username": "new-name"}, {"password": GOOD_PASSWORD}, {"tenant_id": "x"}, {"is_staff": True}],
)
def test_bad_input_on_change_is_400_and_changes_nothing(as_admin, trader, tenant_a, body):
    before = users(tenant_a)
    response = as_admin.patch(f"/api/users/{trader.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    assert users(tenant_a) == before
    assert events(tenant_a) == []


def test_another_tenants_user_is_404(as_admin, user_b, tenant_b):
    response = as_admin.patch(f"/api/users/{user_b.pk}/", {"role": "viewer"}, format="json")
    assert response.status_code == 404
    assert users(tenant_b)["bob"] == ("admin", True)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.TRADER, Role.VIEWER])
def test_everyone_changes_their_own_password(tenant_a, role):
    person = UserFactory(tenant=tenant_a, username="pat", role=role, password="the-old-passphrase")
    client = bearer_client(person)
    url = "/api/users/me/password/"
    wrong = client.post(url, {"old_password": "nope", "new_password": GOOD_PASSWORD}, format="json")
    assert wrong.status_code == 400 and "old_password" in wrong.json()
    weak = client.post(url, {"old_password": "the-old-passphrase", "new_password": "short"}, format="json")
    assert weak.status_code == 400
    assert "too short" in str(weak.json()["new_password"])
    ok = client.post(url, {"old_password": "the-old-passphrase", "new_password": GOOD_PASSWORD}, format="json")
    assert ok.status_code == 204
    with tenant_context(tenant_a):
        assert User.objects.get(pk=person.pk).check_password(GOOD_PASSWORD)
    (event,) = events(tenant_a)
    assert (event.action, event.actor, event.details) == ("user.changed", str(person.pk), {"changed": ["password"]})
    login = {"tenant": "acme", "username": "pat", "password": GOOD_PASSWORD}
    assert client.post("/api/auth/token/", login, format="json").status_code == 200
