"""The audit trail: append-only for the owner, invisible to the app role, and
written by every platform action. Privilege tests run on the real roles: the
app role through `default`, the owner through `owner`."""

from __future__ import annotations

import json
import uuid
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction
from psycopg import sql

from platform_ops.models import AuditEntry
from tenants import platform_audit as audit
from tenants.constants import APP_ROLE, OWNER_ROLE
from tests.support.scratch import manage, scratch_database
from tests.support.staff import STAFF_PASSWORD, admin_login, owner_tenant, owner_user

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def entries(**filters) -> list[AuditEntry]:
    return list(AuditEntry.objects.using("owner").filter(**filters).order_by("id"))


def refused(alias: str, statement: str) -> str:
    """Run `statement` in a savepoint on `alias`; the SQLSTATE class name it was refused with."""
    with pytest.raises(DatabaseError) as caught:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute(statement)
    return type(caught.value.__cause__).__name__


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM platform_audit",
        "INSERT INTO platform_audit (actor, action, result) VALUES ('x', 'y', 'ok')",
        "UPDATE platform_audit SET actor = 'x'",
        "DELETE FROM platform_audit",
        "TRUNCATE platform_audit",
    ],
)
def test_the_app_role_has_no_access_at_all(statement):
    assert refused("default", statement) == "InsufficientPrivilege"


def test_privileges_are_exactly_insert_and_select_for_the_owner_and_none_for_the_app():
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT r, p, has_table_privilege(r, 'platform_audit', p) FROM unnest(%s::text[]) r, "
            "unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p",
            [[APP_ROLE, OWNER_ROLE]],
        )
        held = {(role, privilege) for role, privilege, has in cursor.fetchall() if has}
    assert held == {(OWNER_ROLE, "SELECT"), (OWNER_ROLE, "INSERT")}


def test_the_owner_appends_but_cannot_update_delete_or_truncate():
    entry_id = audit.record("test.append", detail={"n": 1})
    assert entries(id=entry_id)[0].detail == {"n": 1}
    for statement in ("UPDATE platform_audit SET actor = 'x'", "DELETE FROM platform_audit", "TRUNCATE platform_audit"):
        assert refused("owner", statement) == "InsufficientPrivilege"


def test_the_trigger_refuses_even_after_the_owner_grants_itself_the_rights():
    audit.record("test.append")
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            sql.SQL("GRANT UPDATE, DELETE, TRUNCATE ON platform_audit TO {}")
            .format(sql.Identifier(OWNER_ROLE))
            .as_string(cursor.connection)
        )
    for statement in ("UPDATE platform_audit SET actor = 'x'", "DELETE FROM platform_audit", "TRUNCATE platform_audit"):
        with pytest.raises(DatabaseError, match="platform_audit is append-only"):
            with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
                cursor.execute(statement)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_tenant_commands_are_recorded_with_actor_source_and_detail(monkeypatch):
    monkeypatch.setenv("AUDIT_ACTOR", "oncall-jane")
    tenant_id = uuid.UUID(run("create_tenant", "acme", "--name", "Acme", "--tier", "starter").strip())
    run("set_tenant_status", "acme", "suspended")
    owner_tenant(settings.PLATFORM_TENANT_SLUG)
    run("create_tenant_user", settings.PLATFORM_TENANT_SLUG, "ops", "--password", "long-enough-pw", "--staff")
    created, status = entries(tenant_id=tenant_id)
    assert (created.action, created.actor, created.detail) == (
        "tenant.create",
        "oncall-jane",
        {"name": "Acme", "tier": "starter"},
    )
    assert created.source.startswith("cli@")
    assert (status.action, status.detail) == ("tenant.status", {"from": "active", "to": "suspended"})
    (staff,) = entries(action="user.staff", tenant_slug=settings.PLATFORM_TENANT_SLUG)
    assert staff.detail == {"user": "ops", "is_staff": True, "is_superuser": False}


def test_rls_bypass_on_and_off_are_recorded_with_the_reason():
    from tenants.management.commands.rls_bypass import set_app_role_bypass

    try:
        run("rls_bypass", "on", "--yes", "--reason", "INC-42")
        run("rls_bypass", "off", "--reason", "INC-42 resolved")
    finally:
        set_app_role_bypass(False)
    on, off = entries(action__startswith="rls_bypass")[-2:]
    assert (on.action, on.reason, off.action, off.reason) == (
        "rls_bypass.on",
        "INC-42",
        "rls_bypass.off",
        "INC-42 resolved",
    )


def test_admin_changes_to_tier_status_and_staff_rights_are_recorded(client):
    platform = owner_tenant(settings.PLATFORM_TENANT_SLUG)
    owner_user(platform, "root", is_staff=True, is_superuser=True)
    trader = owner_user(platform, "trader")
    acme = owner_tenant("acme", subscription_tier="pro")
    assert admin_login(client, "root").status_code == 302
    (login,) = entries(action="admin.login")
    assert (login.actor, login.source) == (f"root@{settings.PLATFORM_TENANT_SLUG}", "127.0.0.1")
    response = client.post(
        f"/admin/tenants/tenant/{acme.pk}/change/",
        {"name": "Acme", "slug": "acme", "subscription_tier": "enterprise", "status": "suspended"},
    )
    assert response.status_code == 302, response.content[:500]
    actions = {e.action: e.detail for e in entries(tenant_id=acme.pk)}
    assert actions == {
        "tenant.tier": {"from": "pro", "to": "enterprise"},
        "tenant.status": {"from": "active", "to": "suspended"},
    }
    response = client.post(
        f"/admin/tenants/user/{trader.pk}/change/",
        {"email": "", "is_active": "on", "is_staff": "on", "new_password": ""},
    )
    assert response.status_code == 302, response.content[:500]
    (staff,) = entries(action="user.staff")
    assert (
        staff.detail["user"] == "trader" and staff.detail["is_staff"] is True and staff.detail["was_is_staff"] is False
    )
    assert staff.actor == f"root@{settings.PLATFORM_TENANT_SLUG}"


def test_a_failed_admin_login_is_recorded_durably(client):
    owner_tenant(settings.PLATFORM_TENANT_SLUG)
    name = f"mallory-{uuid.uuid4().hex[:6]}"
    assert admin_login(client, name, "wrong-password").status_code == 200
    # Written on its own connection: it survives the request (and this test's) rollback.
    fresh = connections.create_connection("owner")
    try:
        with fresh.cursor() as cursor:
            cursor.execute(
                "SELECT action, result, source FROM platform_audit WHERE actor = %s", [f"{name} (not logged in)"]
            )
            assert cursor.fetchall() == [("admin.login_failed", "refused", "127.0.0.1")]
    finally:
        fresh.close()
    assert STAFF_PASSWORD not in json.dumps([e.detail for e in entries(action="admin.login_failed")])


def test_the_admin_view_is_read_only(client):
    platform = owner_tenant(settings.PLATFORM_TENANT_SLUG)
    owner_user(platform, "root", is_staff=True, is_superuser=True)
    entry_id = audit.record("test.visible")
    admin_login(client, "root")
    assert client.get("/admin/platform_ops/auditentry/").status_code == 200
    assert client.get(f"/admin/platform_ops/auditentry/{entry_id}/change/").status_code == 200  # a read-only view
    assert client.get("/admin/platform_ops/auditentry/add/").status_code == 403
    assert client.post(f"/admin/platform_ops/auditentry/{entry_id}/delete/", {"post": "yes"}).status_code == 403
    assert entries(id=entry_id)


def test_audit_log_filters_and_prints_json_lines():
    acme, globex = uuid.uuid4(), uuid.uuid4()
    audit.record("tenant.status", tenant_id=acme, tenant_slug="acme-x", detail={"to": "suspended"}, reason="unpaid")
    audit.record("tenant.tier", tenant_id=acme, tenant_slug="acme-x")
    audit.record("tenant.status", tenant_id=globex, tenant_slug="globex-x")
    lines = run("audit_log", "--tenant", "acme-x", "--action", "tenant.status", "--since", "1h", "--json").splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert {"at", "actor", "action", "tenant", "detail"} <= row.keys()
    assert (row["tenant"], row["action"], row["detail"], row["reason"]) == (
        "acme-x",
        "tenant.status",
        {"to": "suspended"},
        "unpaid",
    )
    assert len(run("audit_log", "--tenant", str(acme), "--json").splitlines()) == 2
    assert run("audit_log", "--tenant", "acme-x", "--since", "2999-01-01") == ""


def test_audit_log_refuses_an_unreadable_since():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="--since 'yesterday'"):
        run("audit_log", "--since", "yesterday")


def test_us004_forward_and_back_are_recorded():
    with scratch_database("alphapulse_audit") as db:
        manage(db, "migrate")
        manage(db, "migrate", "tenants", "0007")
        manage(db, "migrate")
        lines = manage(db, "audit_log", "--action", "migration.us004", "--json").stdout.splitlines()
        assert [json.loads(line)["action"] for line in lines] == [
            "migration.us004.apply",
            "migration.us004.unapply",
            "migration.us004.apply",
        ]
        # The trail outlived the rollback of tenancy itself.
        assert json.loads(lines[0])["detail"]["migration"] == "tenants.0008_us004_enable_rls"


def test_a_newline_in_a_login_username_cannot_forge_an_audit_line(client):
    """Issue 20 item 8: a username with a newline printed a second, fake entry."""
    owner_tenant(settings.PLATFORM_TENANT_SLUG)
    forged = "x\n2026-12-01 10:00:00+0000 root@platform [127.0.0.1] rls_bypass.off - ok\x1b[2K"
    admin_login(client, forged, "wrong-password")
    fresh = connections.create_connection("owner")
    try:
        with fresh.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM platform_audit WHERE actor LIKE %s", ["x\n2026%"])
            assert cursor.fetchone()[0] == 1  # the attempt itself is recorded as typed
    finally:
        fresh.close()
    lines = run("audit_log", "--action", "admin.login_failed").splitlines()
    assert [line for line in lines if "rls_bypass.off" in line] == [
        line for line in lines if line.split(" ", 3)[2].startswith("x\\n2026")
    ]
    assert not [line for line in lines if line.startswith("2026-12-01 10:00:00")]
    assert "\x1b" not in "".join(lines)


def test_the_database_sets_an_audit_entrys_time_and_id():
    """Issue 20 item 14: plain DML chose a past time and an id of its own."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO platform_audit (id, at, actor, action, result) OVERRIDING SYSTEM VALUE "
            "VALUES (424242, '2001-01-01', 'backdated', 'test.backdate', 'ok') RETURNING id, at"
        )
        entry_id, at = cursor.fetchone()
    assert entry_id != 424242
    assert at.year >= 2025
