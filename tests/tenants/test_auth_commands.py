"""Django's own `createsuperuser` and `changepassword`, as a Django user runs them,
on a model whose usernames are unique per tenant. They run as the owner, so
these tests read results back through the owner alias."""

from __future__ import annotations

import getpass
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from tenants import services
from tenants.models import User
from tests.support.staff import admin_login

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

OWNER = "owner"
PASSWORD = "a-long-enough-password"


class TTY(StringIO):
    def isatty(self) -> bool:
        return True


def answers(monkeypatch, *, inputs: dict[str, str], passwords: list[str]) -> None:
    """What an operator types: `input()` answers by prompt, `getpass()` in order."""

    def fake_input(prompt: str) -> str:
        return next(value for key, value in inputs.items() if key.lower() in prompt.lower())

    typed = iter(passwords)
    monkeypatch.setattr("django.contrib.auth.management.commands.createsuperuser.input", fake_input, raising=False)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="Password: ", stream=None: next(typed))


def platform_users(username: str) -> list[User]:
    return services.users_named(username, tenant_slug=settings.PLATFORM_TENANT_SLUG, using=OWNER)


def test_createsuperuser_noinput_makes_a_platform_superuser_who_can_log_in(monkeypatch, client):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    out = StringIO()
    call_command("createsuperuser", "--noinput", "--username", "root", "--email", "root@example.com", stdout=out)
    assert "Superuser created successfully" in out.getvalue()
    [root] = platform_users("root")
    assert (root.is_staff, root.is_superuser, root.email) == (True, True, "root@example.com")
    assert root.tenant.slug == settings.PLATFORM_TENANT_SLUG  # made on first use
    # /admin/ asks for a second factor: the command says how to enroll, and the password alone is refused.
    assert "`manage.py enroll_staff_otp root`" in out.getvalue()
    password_only = client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD})
    assert password_only.status_code == 200 and b"enroll_staff_otp" in password_only.content
    login = admin_login(client, "root", PASSWORD)  # enrolled as the command does, with the app's code
    assert login.status_code == 302 and login["Location"] == "/admin/"


def test_createsuperuser_noinput_reads_every_field_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ops@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", "--noinput", stdout=StringIO())
    [ops] = platform_users("ops")
    assert ops.is_superuser and ops.check_password(PASSWORD)


def test_createsuperuser_interactive(monkeypatch):
    answers(monkeypatch, inputs={"username": "dana", "email": "dana@example.com"}, passwords=[PASSWORD, PASSWORD])
    out = StringIO()
    call_command("createsuperuser", interactive=True, stdin=TTY(), stdout=out, stderr=StringIO())
    assert "Superuser created successfully" in out.getvalue()
    assert "`manage.py enroll_staff_otp dana`" in out.getvalue()
    [dana] = platform_users("dana")
    assert dana.is_superuser and dana.check_password(PASSWORD)


def test_createsuperuser_refuses_a_name_the_platform_has_but_not_one_a_customer_has(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    acme = services.tenant_create(slug="acme", name="Acme")
    services.user_create(tenant=acme, username="alice", password=PASSWORD)
    call_command("createsuperuser", "--noinput", "--username", "alice", "--email", "", stdout=StringIO())
    assert len(platform_users("alice")) == 1
    with pytest.raises(CommandError, match="platform tenant already has a user 'alice'"):
        call_command("createsuperuser", "--noinput", "--username", "alice", "--email", "", stdout=StringIO())


@pytest.fixture
def two_alices():
    acme = services.tenant_create(slug="acme", name="Acme")
    globex = services.tenant_create(slug="globex", name="Globex")
    return (
        services.user_create(tenant=acme, username="alice", password="acme-old-password"),
        services.user_create(tenant=globex, username="alice", password="globex-old-password"),
    )


def test_changepassword_needs_a_tenant_when_the_name_is_in_several(two_alices, monkeypatch):
    answers(monkeypatch, inputs={}, passwords=[PASSWORD, PASSWORD])
    with pytest.raises(CommandError, match=r"exists in 2 tenants \(acme, globex\): name one with --tenant") as exc:
        call_command("changepassword", "alice", stdout=StringIO())
    assert exc.value.returncode == 2


def test_changepassword_with_a_tenant_changes_that_users_password_only(two_alices, monkeypatch):
    answers(monkeypatch, inputs={}, passwords=[PASSWORD, PASSWORD])
    out = StringIO()
    call_command("changepassword", "alice", "--tenant", "acme", stdout=out)
    assert "Password changed successfully for user 'alice' of tenant 'acme'" in out.getvalue()
    acme_alice, globex_alice = (User.all_tenants.using(OWNER).get(pk=u.pk) for u in two_alices)
    assert acme_alice.check_password(PASSWORD)
    assert globex_alice.check_password("globex-old-password")


def test_changepassword_without_a_tenant_when_the_name_is_unique(monkeypatch):
    acme = services.tenant_create(slug="acme", name="Acme")
    bob = services.user_create(tenant=acme, username="bob", password="bob-old-password")
    answers(monkeypatch, inputs={}, passwords=["short", "short", PASSWORD, PASSWORD])
    err = StringIO()
    call_command("changepassword", "bob", stdout=StringIO(), stderr=err)
    assert "too short" in err.getvalue()  # the weak one was refused, the next accepted
    assert User.all_tenants.using(OWNER).get(pk=bob.pk).check_password(PASSWORD)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody"], "user 'nobody' does not exist"),
        (["alice", "--tenant", "initech"], "does not exist in tenant 'initech'"),
    ],
)
def test_changepassword_unknown_user_is_a_clear_error(two_alices, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("changepassword", *args, stdout=StringIO())


@pytest.mark.parametrize("password", ["password", "12345678", "12345678901234"])
def test_commands_refuse_common_and_numeric_passwords(password):
    """Issue 20 item 15: Django's four validators, wherever a password is set."""
    services.tenant_create(slug="acme", name="Acme")
    with pytest.raises(CommandError, match="too common|entirely numeric"):
        call_command("create_tenant_user", "acme", "dana", "--password", password, stdout=StringIO())
    assert not services.users_named("dana", using=OWNER)
