"""Tenant slugs are lower case on every way in: `HOOLI` beside `hooli` is a look-alike in the
staff UI, and a login naming `ACME` finds `acme`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connections, transaction
from rest_framework.test import APIClient

from tenants.models import Tenant
from tests.support.clients import PASSWORD
from tests.support.factories import TenantFactory

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

lower_case_migration = __import__(
    "tenants.migrations.0015_i26_tenant_slug_lower_case", fromlist=["slug_clashes", "lower_slugs", "SlugClash"]
)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_create_tenant_lowers_the_slug_and_refuses_a_look_alike():
    run("create_tenant", "HOOLI", "--name", "Hooli")
    assert Tenant.objects.using("owner").filter(slug="hooli").exists()
    with pytest.raises(CommandError, match="'hooli' already exists") as refused:
        run("create_tenant", "hooli", "--name", "Hooli again")
    assert refused.value.returncode == 2


def test_commands_find_a_tenant_whatever_the_case():
    run("create_tenant", "hooli", "--name", "Hooli")
    run("set_tenant_status", "HOOLI", "suspended")
    assert Tenant.objects.using("owner").get(slug="hooli").status == "suspended"


def test_a_login_naming_the_slug_in_capitals_finds_the_tenant(user_a):
    response = APIClient().post(
        "/api/auth/token/", {"tenant": "ACME", "username": "alice", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content


def test_the_admin_form_lowers_the_slug_and_refuses_a_look_alike():
    from django.contrib.admin.sites import site

    form_class = site._registry[Tenant].get_form(request=None, obj=None, fields=["name", "slug", "subscription_tier"])
    TenantFactory(slug="hooli", name="Hooli")  # committed: the form reads through the app connection
    form = form_class(data={"name": "Hooli II", "slug": "HOOLI", "subscription_tier": "pro"})
    assert not form.is_valid()
    assert "slug" in form.errors
    fresh = form_class(data={"name": "Pied Piper", "slug": "PiedPiper", "subscription_tier": "pro"})
    assert fresh.is_valid(), fresh.errors
    assert fresh.instance.slug == "piedpiper"


def test_the_database_refuses_a_capital_slug_written_past_the_code():
    with pytest.raises(IntegrityError, match="tenants_slug_lower_case"), transaction.atomic(using="owner"):
        with connections["owner"].cursor() as cursor:
            cursor.execute(
                "INSERT INTO tenants (id, name, slug, subscription_tier, status, created_at, updated_at) "
                "VALUES (gen_random_uuid(), 'X', 'HOOLI', 'pro', 'active', now(), now())"
            )


def test_the_migration_stops_and_names_slugs_that_differ_only_in_case():
    """The constraint comes off inside a transaction that is rolled back: the clash the
    migration finds on an older database, made here."""
    with pytest.raises(lower_case_migration.SlugClash, match="'HOOLI', 'hooli'"):
        with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
            cursor.execute("ALTER TABLE tenants DROP CONSTRAINT tenants_slug_lower_case")
            for slug in ("hooli", "HOOLI", "Other"):
                cursor.execute(
                    "INSERT INTO tenants (id, name, slug, subscription_tier, status, created_at, updated_at) "
                    "VALUES (gen_random_uuid(), 'X', %s, 'pro', 'active', now(), now())",
                    [slug],
                )

            class Editor:
                connection = connections["owner"]

            lower_case_migration.lower_slugs(None, Editor())
    assert Tenant.objects.using("owner").filter(slug__in=["hooli", "other"]).count() == 0


def test_the_migration_lowers_slugs_without_a_clash():
    with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
        cursor.execute("ALTER TABLE tenants DROP CONSTRAINT tenants_slug_lower_case")
        cursor.execute(
            "INSERT INTO tenants (id, name, slug, subscription_tier, status, created_at, updated_at) "
            "VALUES (gen_random_uuid(), 'X', 'Initech', 'pro', 'active', now(), now())"
        )

        class Editor:
            connection = connections["owner"]

        lower_case_migration.lower_slugs(None, Editor())
        cursor.execute("SELECT slug FROM tenants WHERE lower(slug) = 'initech'")
        assert cursor.fetchall() == [("initech",)]
        transaction.set_rollback(True, using="owner")
