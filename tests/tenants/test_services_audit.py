"""Each tenant service records its own change in the platform audit trail, whichever surface
called it (the admin, a command, offboarding, a shell), with the actor it is given: a change
is never audited by one surface and silent from another."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command

from platform_ops.models import AuditEntry
from tenants import services
from tenants.models import Tenant, User
from tenants.platform_audit import Actor
from tests.support.staff import OWNER, admin_login, owner_tenant, owner_user

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def entries(**filters) -> list[AuditEntry]:
    return list(AuditEntry.objects.using(OWNER).filter(**filters).order_by("id"))


def test_a_service_called_from_a_shell_records_its_change_as_the_operator(monkeypatch):
    monkeypatch.setenv("AUDIT_ACTOR", "oncall-jane")
    acme = services.tenant_create(slug="acme", name="Acme")
    assert services.tenant_set_status(acme, Tenant.Status.SUSPENDED)
    assert services.tenant_set_tier(acme, Tenant.Tier.ENTERPRISE)
    recorded = [(e.action, e.actor, e.detail) for e in entries(tenant_id=acme.pk)]
    assert recorded == [
        ("tenant.create", "oncall-jane", {"name": "Acme", "tier": "pro"}),
        ("tenant.status", "oncall-jane", {"from": "active", "to": "suspended"}),
        ("tenant.tier", "oncall-jane", {"from": "pro", "to": "enterprise"}),
    ]


def test_the_actor_given_to_a_service_is_the_one_recorded():
    acme = owner_tenant("acme")
    services.tenant_set_status(acme, Tenant.Status.SUSPENDED, by=Actor("root@platform", "10.0.0.7"), reason="unpaid")
    (entry,) = entries(tenant_id=acme.pk)
    assert (entry.actor, entry.source, entry.reason) == ("root@platform", "10.0.0.7", "unpaid")


def test_a_change_that_changes_nothing_or_is_refused_records_nothing():
    platform = owner_tenant(settings.PLATFORM_TENANT_SLUG)
    acme = owner_tenant("acme")
    assert not services.tenant_set_status(acme, Tenant.Status.ACTIVE)
    with pytest.raises(ValidationError):
        services.tenant_set_status(platform, Tenant.Status.SUSPENDED)
    assert entries(action__startswith="tenant.") == []


def test_createsuperuser_records_the_new_staff_account(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-enough-password")
    call_command("createsuperuser", "--noinput", "--username", "root", "--email", "", stdout=StringIO())
    (staff,) = entries(action="user.staff")
    assert (staff.tenant_slug, staff.detail) == (
        settings.PLATFORM_TENANT_SLUG,
        {"user": "root", "is_staff": True, "is_superuser": True},
    )


def test_admin_deactivate_and_reactivate_actions_are_recorded(client):
    platform = owner_tenant(settings.PLATFORM_TENANT_SLUG)
    owner_user(platform, "staff", is_staff=True)
    alice = owner_user(owner_tenant("acme"), "alice")
    assert admin_login(client, "staff").status_code == 302
    for action in ("deactivate", "reactivate"):
        response = client.post("/admin/tenants/user/", {"action": action, "_selected_action": [str(alice.pk)]})
        assert response.status_code == 302, response.content[:500]
    assert User.all_tenants.using(OWNER).get(pk=alice.pk).is_active
    recorded = [(e.action, e.actor, e.tenant_slug, e.detail) for e in entries(action="user.active")]
    assert recorded == [
        ("user.active", f"staff@{settings.PLATFORM_TENANT_SLUG}", "acme", {"user": "alice", "from": True, "to": False}),
        ("user.active", f"staff@{settings.PLATFORM_TENANT_SLUG}", "acme", {"user": "alice", "from": False, "to": True}),
    ]
