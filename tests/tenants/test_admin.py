"""The staff admin: runs on the owner connection, platform staff only.

Admin requests read and write through the `owner` alias (tenants.database.routers), so
the data these tests need is created there too; the app connection never sees
it (each alias has its own test transaction), which is itself the point.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext

from tenants.constants import APP_ROLE, OWNER_ROLE
from tenants.models import Tenant, User
from tests.support.staff import OWNER, admin_login, owner_tenant, owner_user
from trading.models import Trade

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


@pytest.fixture
def platform():
    return owner_tenant(settings.PLATFORM_TENANT_SLUG, name="AlphaPulse platform")


@pytest.fixture
def staff(platform):
    return owner_user(platform, "staff", is_staff=True)


@pytest.fixture
def superuser(platform):
    return owner_user(platform, "root", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff):
    response = admin_login(client, "staff")
    assert response.status_code == 302, response.content[:500]
    return client


@pytest.fixture
def super_client(client, superuser):
    assert admin_login(client, "root").status_code == 302
    return client


# -- who may log in -----------------------------------------------------------


def test_platform_staff_logs_in(client, staff):
    response = admin_login(client, "staff")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_tenants_user_cannot_log_in_even_with_staff_flag_and_right_password(client, platform):
    acme = owner_tenant("acme")
    impostor = owner_user(acme, "staff")  # same name and password as platform staff would have
    # Flags written past every rule (raw SQL, an old row): the login still refuses.
    User.all_tenants.using(OWNER).filter(pk=impostor.pk).update(is_staff=True, is_superuser=True)
    response = admin_login(client, "staff")
    assert response.status_code == 200
    assert b"Please enter the correct username and password" in response.content
    assert client.get("/admin/").status_code == 302  # still sent to the login page


def test_non_staff_platform_user_and_inactive_staff_cannot_log_in(client, platform):
    owner_user(platform, "plain")
    owner_user(platform, "gone", is_staff=True, is_active=False)
    assert admin_login(client, "plain").status_code == 200
    assert admin_login(client, "gone").status_code == 200
    assert admin_login(client, "missing").status_code == 200


# -- which connection ---------------------------------------------------------


def current_user(alias: str) -> str:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_user")
        return cursor.fetchone()[0]


def test_admin_requests_run_as_the_owner_and_api_requests_as_the_app_role(staff_client, client_a):
    assert current_user(OWNER) == OWNER_ROLE
    assert current_user("default") == APP_ROLE
    with CaptureQueriesContext(connections[OWNER]) as owner_q, CaptureQueriesContext(connections["default"]) as app_q:
        assert staff_client.get("/admin/tenants/tenant/").status_code == 200
    assert len(owner_q) > 0 and len(app_q) == 0
    with CaptureQueriesContext(connections[OWNER]) as owner_q, CaptureQueriesContext(connections["default"]) as app_q:
        assert client_a.get("/api/trades/").status_code == 200
    assert len(app_q) > 0 and len(owner_q) == 0


# -- tenants ------------------------------------------------------------------


def test_tenant_list_shows_every_tenant_with_user_counts_search_and_filters(staff_client, platform):
    acme = owner_tenant("acme", name="Acme Capital", subscription_tier=Tenant.Tier.ENTERPRISE)
    owner_tenant("globex", name="Globex Trading", status=Tenant.Status.SUSPENDED)
    owner_user(acme, "alice")
    owner_user(acme, "arthur")
    page = staff_client.get("/admin/tenants/tenant/").content.decode()
    assert "Acme Capital" in page and "Globex Trading" in page
    assert f'?tenant__id__exact={acme.pk}">2</a>' in page
    found = staff_client.get("/admin/tenants/tenant/?q=glob").content.decode()
    assert "Globex Trading" in found and "Acme Capital" not in found
    suspended = staff_client.get("/admin/tenants/tenant/?status__exact=suspended").content.decode()
    assert "Globex Trading" in suspended and "Acme Capital" not in suspended
    enterprise = staff_client.get("/admin/tenants/tenant/?subscription_tier__exact=enterprise").content.decode()
    assert "Acme Capital" in enterprise and "Globex Trading" not in enterprise


def test_creating_a_tenant_in_the_admin_gives_create_tenants_defaults(staff_client):
    response = staff_client.post(
        "/admin/tenants/tenant/add/",
        {"name": "Initech Funds", "slug": "initech", "subscription_tier": "pro", "status": "active"},
    )
    assert response.status_code == 302, response.content[:2000]
    tenant = Tenant.objects.using(OWNER).get(slug="initech")
    assert (tenant.subscription_tier, tenant.status) == (Tenant.Tier.PRO, Tenant.Status.ACTIVE)
    form = staff_client.get("/admin/tenants/tenant/add/").content.decode()
    assert '<option value="pro" selected>' in form and '<option value="active" selected>' in form


def test_bad_tenant_input_is_a_form_error_and_writes_nothing(staff_client):
    owner_tenant("acme")
    before = Tenant.objects.using(OWNER).count()
    for bad in (
        {"name": "Dup", "slug": "acme", "subscription_tier": "pro", "status": "active"},
        {"name": "Bad slug", "slug": "no spaces!", "subscription_tier": "pro", "status": "active"},
        {"name": "Bad tier", "slug": "tiered", "subscription_tier": "platinum", "status": "active"},
    ):
        response = staff_client.post("/admin/tenants/tenant/add/", bad)
        assert response.status_code == 200
        assert b"errornote" in response.content
    assert Tenant.objects.using(OWNER).count() == before


def test_suspend_and_activate_actions(staff_client):
    acme = owner_tenant("acme")
    response = staff_client.post(
        "/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [str(acme.pk)]}, follow=True
    )
    assert b"Suspended 1 tenant(s)." in response.content
    acme.refresh_from_db(using=OWNER)
    assert acme.status == Tenant.Status.SUSPENDED
    staff_client.post("/admin/tenants/tenant/", {"action": "activate", "_selected_action": [str(acme.pk)]})
    acme.refresh_from_db(using=OWNER)
    assert acme.status == Tenant.Status.ACTIVE


# -- users --------------------------------------------------------------------


def user_form(tenant: Tenant, **overrides) -> dict:
    return {
        "tenant": str(tenant.pk),
        "username": "dana",
        "email": "dana@example.com",
        "role": "viewer",
        "is_active": "on",
        "password1": "a-long-enough-password",
        "password2": "a-long-enough-password",
        **overrides,
    }


def test_create_a_user_in_a_chosen_tenant_with_a_password(staff_client):
    acme = owner_tenant("acme")
    response = staff_client.post("/admin/tenants/user/add/", user_form(acme))
    assert response.status_code == 302, response.content[:3000]
    dana = User.all_tenants.using(OWNER).get(username="dana")
    assert dana.tenant_id == acme.pk
    assert dana.check_password("a-long-enough-password")
    assert not dana.is_staff
    assert dana.role == "viewer"


def test_user_form_errors_write_nothing(staff_client):
    acme = owner_tenant("acme")
    owner_user(acme, "dana")
    duplicate = staff_client.post("/admin/tenants/user/add/", user_form(acme))
    assert duplicate.status_code == 200 and b"already has a user" in duplicate.content
    mismatch = staff_client.post("/admin/tenants/user/add/", user_form(acme, username="eve", password2="different"))
    assert mismatch.status_code == 200 and b"The two passwords differ." in mismatch.content
    short = staff_client.post("/admin/tenants/user/add/", user_form(acme, username="eve", password1="x", password2="x"))
    assert short.status_code == 200 and b"too short" in short.content
    assert User.all_tenants.using(OWNER).filter(tenant=acme).count() == 1


def test_same_username_is_fine_in_another_tenant(staff_client):
    acme, globex = owner_tenant("acme"), owner_tenant("globex")
    owner_user(acme, "dana")
    assert staff_client.post("/admin/tenants/user/add/", user_form(globex)).status_code == 302
    assert User.all_tenants.using(OWNER).filter(username="dana").count() == 2


def test_deactivate_action_and_user_filter_by_tenant(staff_client):
    acme, globex = owner_tenant("acme"), owner_tenant("globex")
    alice, bob = owner_user(acme, "alice"), owner_user(globex, "bob")
    listing = staff_client.get(f"/admin/tenants/user/?tenant__id__exact={acme.pk}").content.decode()
    assert "alice" in listing and ">bob<" not in listing
    staff_client.post("/admin/tenants/user/", {"action": "deactivate", "_selected_action": [str(alice.pk)]})
    alice.refresh_from_db(using=OWNER)
    bob.refresh_from_db(using=OWNER)
    assert (alice.is_active, bob.is_active) == (False, True)


def change_form(user: User, **overrides) -> dict:
    return {"email": user.email, "role": user.role, "is_active": "on", "new_password": "", **overrides}


def test_role_change_in_the_admin_keeps_the_last_admin_and_is_audited(super_client, platform):
    from tenants.context import tenant_context
    from tenants.models import TenantAuditEvent

    acme = owner_tenant("acme")
    alice, arthur = owner_user(acme, "alice", role="admin"), owner_user(acme, "arthur", role="trader")
    refused = super_client.post(f"/admin/tenants/user/{alice.pk}/change/", change_form(alice, role="viewer"))
    assert refused.status_code == 200 and b"last active admin" in refused.content
    alice.refresh_from_db(using=OWNER)
    assert alice.role == "admin"
    done = super_client.post(f"/admin/tenants/user/{arthur.pk}/change/", change_form(arthur, role="admin"))
    assert done.status_code == 302
    arthur.refresh_from_db(using=OWNER)
    assert arthur.role == "admin"
    with tenant_context(acme, using=OWNER):
        event = TenantAuditEvent.objects.using(OWNER).get()
    assert (event.action, event.actor, event.details["after"]) == ("user.changed", "system", {"role": "admin"})


def test_only_superusers_can_grant_staff(staff_client, super_client, platform):
    # staff_client and super_client share the `client` fixture: log in per step.
    target = owner_user(platform, "junior")
    admin_login(staff_client, "staff")
    staff_client.post(f"/admin/tenants/user/{target.pk}/change/", change_form(target, is_staff="on"))
    target.refresh_from_db(using=OWNER)
    assert not target.is_staff
    admin_login(super_client, "root")
    super_client.post(f"/admin/tenants/user/{target.pk}/change/", change_form(target, is_staff="on"))
    target.refresh_from_db(using=OWNER)
    assert target.is_staff


def test_making_a_customer_tenants_user_staff_is_refused_with_a_message(super_client, platform):
    acme = owner_tenant("acme")
    alice = owner_user(acme, "alice")
    response = super_client.post(
        f"/admin/tenants/user/{alice.pk}/change/", change_form(alice, is_staff="on", is_superuser="on")
    )
    assert response.status_code == 200  # the form again, with the error
    assert b"Only users of the platform tenant" in response.content
    assert b"&#x27;acme&#x27; is a customer tenant" in response.content
    alice.refresh_from_db(using=OWNER)
    assert (alice.is_staff, alice.is_superuser) == (False, False)


def test_a_customer_tenants_user_cannot_be_saved_as_staff_by_any_path(platform):
    from django.core.exceptions import ValidationError

    acme = owner_tenant("acme")
    with pytest.raises(ValidationError, match="can be staff"):
        owner_user(acme, "mallory", is_staff=True)
    alice = owner_user(acme, "alice")
    alice.is_superuser = True
    with pytest.raises(ValidationError, match="can be staff"):
        alice.save(using=OWNER)
    assert not User.all_tenants.using(OWNER).filter(tenant=acme, is_staff=True).exists()


def test_the_platform_tenant_cannot_be_suspended_from_its_form(staff_client, platform):
    response = staff_client.post(
        f"/admin/tenants/tenant/{platform.pk}/change/",
        {
            "name": platform.name,
            "slug": platform.slug,
            "subscription_tier": platform.subscription_tier,
            "status": "suspended",
        },
    )
    assert response.status_code == 200
    assert b"The platform tenant cannot be suspended" in response.content
    platform.refresh_from_db(using=OWNER)
    assert platform.status == Tenant.Status.ACTIVE


def test_change_password_from_the_admin(staff_client):
    acme = owner_tenant("acme")
    alice = owner_user(acme, "alice")
    response = staff_client.post(
        f"/admin/tenants/user/{alice.pk}/change/", change_form(alice, new_password="brand-new-password")
    )
    assert response.status_code == 302
    alice.refresh_from_db(using=OWNER)
    assert alice.check_password("brand-new-password")


# -- trading data -------------------------------------------------------------


@pytest.fixture
def two_tenants_trades():
    acme, globex = owner_tenant("acme"), owner_tenant("globex")
    alice, bob = owner_user(acme, "alice"), owner_user(globex, "bob")
    for user, symbol in ((alice, "AAPL"), (bob, "MSFT")):
        Trade(tenant=user.tenant, user=user, symbol=symbol, side="buy", quantity=1, price=100).save(using=OWNER)
    return acme, globex


def test_trading_data_browsable_across_tenants_with_tenant_filter_and_symbol_search(staff_client, two_tenants_trades):
    acme, _ = two_tenants_trades
    page = staff_client.get("/admin/trading/trade/").content.decode()
    assert "AAPL" in page and "MSFT" in page
    filtered = staff_client.get(f"/admin/trading/trade/?tenant__id__exact={acme.pk}").content.decode()
    assert "AAPL" in filtered and "MSFT" not in filtered
    searched = staff_client.get("/admin/trading/trade/?q=MSF").content.decode()
    assert "MSFT" in searched and "AAPL" not in searched
    for table in ("order", "position", "portfoliosnapshot", "riskmetric", "agentsignal"):
        assert staff_client.get(f"/admin/trading/{table}/").status_code == 200


def test_trading_rows_cannot_be_added_changed_or_deleted(staff_client, two_tenants_trades):
    trade = Trade.all_tenants.using(OWNER).get(symbol="AAPL")
    assert staff_client.get("/admin/trading/trade/add/").status_code == 403
    view = staff_client.get(f"/admin/trading/trade/{trade.pk}/change/")
    assert view.status_code == 200 and b'type="submit"' not in view.content.split(b'id="content-main"')[1]
    staff_client.post(f"/admin/trading/trade/{trade.pk}/change/", {"symbol": "HACK"})
    assert staff_client.post(f"/admin/trading/trade/{trade.pk}/delete/", {"post": "yes"}).status_code == 403
    trade.refresh_from_db(using=OWNER)
    assert trade.symbol == "AAPL"
    assert Trade.all_tenants.using(OWNER).count() == 2


# -- what plain staff cannot do (a review found each of these open) ------------


def test_plain_staff_cannot_reset_a_superusers_password_or_deactivate_staff(client, staff, superuser, platform):
    other_staff = owner_user(platform, "colleague", is_staff=True)
    admin_login(client, "staff")
    for target in (superuser, other_staff):
        response = client.post(
            f"/admin/tenants/user/{target.pk}/change/", change_form(target, new_password="pwned-123")
        )
        assert response.status_code == 403
        client.post("/admin/tenants/user/", {"action": "deactivate", "_selected_action": [str(target.pk)]})
        target.refresh_from_db(using=OWNER)
        assert target.is_active and not target.check_password("pwned-123")
    page = client.get(f"/admin/tenants/user/{superuser.pk}/change/")
    assert page.status_code == 200 and b'name="new_password"' not in page.content  # view only


def test_nothing_is_deleted_from_the_admin(client, staff, superuser, platform):
    acme = owner_tenant("acme")
    alice = owner_user(acme, "alice")
    admin_login(client, "root")  # not even by a superuser
    assert client.post(f"/admin/tenants/tenant/{platform.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/tenants/user/{alice.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = client.post(
        "/admin/tenants/tenant/",
        {"action": "delete_selected", "_selected_action": [str(acme.pk)], "post": "yes"},
        follow=True,
    )
    assert b"No action selected" in bulk.content
    assert Tenant.objects.using(OWNER).filter(pk__in=[platform.pk, acme.pk]).count() == 2
    assert User.all_tenants.using(OWNER).filter(pk=alice.pk).exists()


def test_the_platform_tenant_cannot_be_suspended(staff_client, platform):
    acme = owner_tenant("acme")
    response = staff_client.post(
        "/admin/tenants/tenant/",
        {"action": "suspend", "_selected_action": [str(platform.pk), str(acme.pk)]},
        follow=True,
    )
    assert b"The platform tenant cannot be suspended" in response.content
    platform.refresh_from_db(using=OWNER)
    acme.refresh_from_db(using=OWNER)
    assert (platform.status, acme.status) == (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)


def test_admin_login_shares_the_login_rate_limit(client, staff, settings):
    settings.LOGIN_RATE_LIMIT = "5/min"
    codes = [admin_login(client, "staff", f"wrong-{n}").status_code for n in range(5)]
    assert codes == [200] * 5  # the form again, with its error
    refused = admin_login(client, "staff")  # even the right password, until the window ends
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0


# -- issue 20: the platform tenant's identity; common passwords ----------------


def test_staff_cannot_rename_the_platform_tenant(staff_client, platform):
    """Item 3: a rename locked every staff account out at once."""
    page = staff_client.get(f"/admin/tenants/tenant/{platform.pk}/change/")
    assert b'name="slug"' not in page.content
    staff_client.post(
        f"/admin/tenants/tenant/{platform.pk}/change/",
        {"name": "Renamed", "slug": "renamed", "subscription_tier": platform.subscription_tier, "status": "active"},
    )
    platform.refresh_from_db(using=OWNER)
    assert platform.slug == settings.PLATFORM_TENANT_SLUG
    assert admin_login(staff_client, "staff").status_code == 302


def test_no_path_renames_the_platform_tenant_or_gives_its_slug_away(platform):
    from django.core.exceptions import ValidationError

    platform.slug = "renamed"
    with pytest.raises(ValidationError, match="cannot change"):
        platform.save(using=OWNER)
    platform.refresh_from_db(using=OWNER)
    assert platform.slug == settings.PLATFORM_TENANT_SLUG


@pytest.mark.parametrize("password", ["password", "12345678", "qwertyuiop"])
def test_common_numeric_and_similar_passwords_are_refused_in_the_admin(staff_client, password):
    """Item 15: only the minimum length was checked."""
    acme = owner_tenant("acme")
    response = staff_client.post("/admin/tenants/user/add/", user_form(acme, password1=password, password2=password))
    assert response.status_code == 200
    assert not User.all_tenants.using(OWNER).filter(tenant=acme).exists()
