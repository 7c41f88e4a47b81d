"""The tenant management commands (README, "Operating it"): they run as the owner role, so these
tests use the owner alias too, and read results back through it."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tenants import services
from tenants.context import tenant_context
from tenants.models import Tenant, User

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_create_tenant_prints_its_id_and_applies_the_tier():
    tenant_id = uuid.UUID(run("create_tenant", "acme", "--name", "Acme Capital", "--tier", "enterprise"))
    tenant = Tenant.objects.using("owner").get(pk=tenant_id)
    assert (tenant.slug, tenant.subscription_tier, tenant.status) == ("acme", "enterprise", "active")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create_tenant", "acme", "--name", "X", "--tier", "platinum"], "Unknown tier 'platinum'"),
        (["create_tenant", "bad slug!", "--name", "X"], "Invalid tenant"),
        (["create_tenant_user", "nope", "alice", "--password", "long-enough-pw"], "No tenant with slug 'nope'"),
        (["set_tenant_status", "nope", "suspended"], "No tenant with slug 'nope'"),
        (["set_tenant_status", "default", "deleted"], "Unknown status 'deleted'"),
        (["set_tenant_status", "platform", "suspended"], "platform tenant cannot be suspended"),
        (["create_tenant_user", "default", "alice", "--password", "short"], "too short"),
        (["create_tenant_user", "default", "eve", "--password", "long-enough-pw", "--staff"], "can be staff"),
        (["create_tenant_user", "default", "eve", "--password", "long-enough-pw", "--superuser"], "can be staff"),
        (["create_tenant_user", "default", "eve", "--password", "long-enough-pw", "--role", "root"], "Unknown role"),
    ],
)
def test_bad_arguments_are_clear_errors(args, message):
    services.platform_tenant()
    with pytest.raises(CommandError, match=message) as refused:
        run(*args)
    assert refused.value.returncode == 2


def test_duplicate_slug_is_refused():
    run("create_tenant", "acme", "--name", "Acme")
    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant", "acme", "--name", "Acme again")


def test_create_tenant_user_is_unique_per_tenant_only():
    run("create_tenant", "acme", "--name", "Acme")
    run("create_tenant", "globex", "--name", "Globex")
    first = uuid.UUID(run("create_tenant_user", "acme", "alice", "--password", "long-enough-pw"))
    uuid.UUID(run("create_tenant_user", "globex", "alice", "--password", "long-enough-pw"))
    with pytest.raises(CommandError, match="already has a user 'alice'"):
        run("create_tenant_user", "acme", "alice", "--password", "long-enough-pw")
    user = User.objects.unscoped().using("owner").get(pk=first)  # platform read, owner connection
    assert user.check_password("long-enough-pw")
    assert user.tenant.slug == "acme"


def test_staff_and_superusers_are_distinct_and_only_on_the_platform_tenant(settings):
    run("create_tenant", settings.PLATFORM_TENANT_SLUG, "--name", "Platform")
    staff = run("create_tenant_user", settings.PLATFORM_TENANT_SLUG, "dana", "--password", "long-enough-pw", "--staff")
    root = run(
        "create_tenant_user", settings.PLATFORM_TENANT_SLUG, "root", "--password", "long-enough-pw", "--superuser"
    )
    flags = dict(
        (str(u.pk), (u.is_staff, u.is_superuser)) for u in User.all_tenants.using("owner").filter(pk__in=[staff, root])
    )
    assert flags == {staff: (True, False), root: (True, True)}


def test_set_tenant_status_suspends_and_reactivates():
    run("create_tenant", "acme", "--name", "Acme")
    assert "suspended" in run("set_tenant_status", "acme", "suspended")
    assert Tenant.objects.using("owner").get(slug="acme").status == "suspended"
    run("set_tenant_status", "acme", "active")
    assert Tenant.objects.using("owner").get(slug="acme").status == "active"


def test_rls_check_passes_on_the_migrated_database():
    assert "RLS is enforced" in run("rls_check")


def test_tenant_integrity_passes_on_clean_data():
    assert "No NULL, orphaned or cross-tenant rows" in run("tenant_integrity")


def test_load_demo_is_idempotent():
    run("load_demo", "--trades", "50")
    run("load_demo", "--trades", "50")
    acme = Tenant.objects.using("owner").get(slug="acme")
    with tenant_context(acme, using="owner"):
        from trading.models import Trade

        assert Trade.objects.using("owner").count() == 50
        roles = dict(User.objects.using("owner").values_list("username", "role"))
        assert roles == {"alice": "admin", "arthur": "trader", "ava": "viewer"}


def test_every_project_command_documents_its_exit_status():
    from django.core.management import get_commands, load_command_class

    ours = {name: app for name, app in get_commands().items() if app in ("tenants", "trading")}
    django_named = {"migrate", "sqlmigrate", "showmigrations"}  # Django's own exit statuses, unchanged
    undocumented = [
        name
        for name, app in sorted(ours.items())
        if name not in django_named and "Exit status" not in load_command_class(app, name).help
    ]
    assert undocumented == []
    assert {"createsuperuser", "changepassword", "rls_check", "backup_database"} <= ours.keys()


def test_database_means_a_django_alias_and_database_names_have_their_own_flag():
    from django.core.management import get_commands, load_command_class

    for name, app in get_commands().items():
        if app not in ("tenants", "trading"):
            continue
        parser = load_command_class(app, name).create_parser("manage.py", name)
        for action in parser._actions:
            if "--database" in action.option_strings:
                assert action.choices is None or set(action.choices) >= {"default", "owner"}, name
                assert action.default in ("default", "owner"), name


def test_create_tenant_user_sets_the_role_and_records_it():
    from tenants.models import TenantAuditEvent

    run("create_tenant", "acme", "--name", "Acme")
    user_id = uuid.UUID(run("create_tenant_user", "acme", "vic", "--password", "long-enough-pw", "--role", "viewer"))
    acme = Tenant.objects.using("owner").get(slug="acme")
    with tenant_context(acme, using="owner"):
        assert User.objects.using("owner").get(pk=user_id).role == "viewer"
        event = TenantAuditEvent.objects.using("owner").get(action="user.created")
    assert (event.actor, event.target_id, event.details["role"]) == ("system", str(user_id), "viewer")


def test_create_tenant_user_past_the_seats_is_refused():
    run("create_tenant", "tiny", "--name", "Tiny", "--tier", "free")
    for name in ("u1", "u2", "u3"):
        run("create_tenant_user", "tiny", name, "--password", "long-enough-pw")
    with pytest.raises(CommandError, match="all the seats of its free tier") as refused:
        run("create_tenant_user", "tiny", "u4", "--password", "long-enough-pw")
    assert refused.value.returncode == 2
