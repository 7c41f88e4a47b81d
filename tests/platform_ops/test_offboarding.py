"""Offboarding: refusals that delete nothing, a complete run that removes one
tenant's every row and leaves its neighbours alone, an interrupted run that
resumes, and every step in the audit trail. Data comes from load_demo on the
owner connection (inside the test's transaction), where offboarding runs."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from platform_ops.models import AuditEntry
from platform_ops.offboarding import OffboardingRefused, live_counts, offboard_tenant
from platform_ops.tenant_export import export_tenant
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tests.support.staff import admin_login, owner_user
from trading.models import Trade

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


@pytest.fixture
def demo():
    call_command("load_demo", "--trades", "40", stdout=StringIO())
    return {t.slug: t for t in Tenant.objects.using("owner").all()}


def actions(tenant) -> list[tuple[str, str]]:
    return [
        (e.action, e.result)
        for e in AuditEntry.objects.using("owner").filter(tenant_id=tenant.pk).order_by("id")
        if e.action.startswith(("tenant.offboard", "tenant.status"))
    ]


def test_no_export_and_no_reason_is_refused_and_changes_nothing(demo):
    acme = demo["acme"]
    before = live_counts(acme)
    with pytest.raises(OffboardingRefused, match="without a verified export"):
        offboard_tenant(acme)
    acme.refresh_from_db(using="owner")
    assert acme.status == "active" and live_counts(acme) == before


def test_the_platform_tenant_cannot_be_offboarded(demo):
    with pytest.raises(OffboardingRefused, match="platform tenant cannot be offboarded"):
        offboard_tenant(demo[settings.PLATFORM_TENANT_SLUG], no_export_reason="test")


def test_an_export_of_another_tenant_or_a_damaged_one_is_refused(demo, tmp_path):
    globex_export = export_tenant(demo["globex"], tmp_path / "globex").path
    with pytest.raises(OffboardingRefused, match="export of tenant 'globex', not of 'acme'"):
        offboard_tenant(demo["acme"], export_path=globex_export)
    (globex_export / "trades.ndjson").write_text("{}\n")
    with pytest.raises(OffboardingRefused, match="checksum mismatch"):
        offboard_tenant(demo["globex"], export_path=globex_export)
    # Every table the demo fills still holds globex's rows (it makes no sessions or API keys).
    assert all(n for table, n in live_counts(demo["globex"]).items() if table not in ("user_sessions", "api_keys"))


def test_a_stale_export_is_refused_and_the_tenant_stays_suspended(demo, tmp_path):
    acme = demo["acme"]
    path = export_tenant(acme, tmp_path / "acme").path
    with tenant_context(acme, using="owner"):
        user = User.objects.using("owner").first()
        Trade(tenant=acme, user=user, symbol="AAPL", side="buy", quantity=1, price=1).save(using="owner")
    with pytest.raises(OffboardingRefused, match="is stale"):
        offboard_tenant(acme, export_path=path)
    assert Tenant.objects.using("owner").get(pk=acme.pk).status == "suspended"
    assert live_counts(acme)["trades"] == 41
    assert actions(acme) == [("tenant.status", "ok"), ("tenant.offboard", "refused")]


def test_offboarding_deletes_every_row_of_the_tenant_only(demo, tmp_path):
    acme, globex = demo["acme"], demo["globex"]
    neighbours = live_counts(globex)
    path = export_tenant(acme, tmp_path / "acme").path
    outcome = offboard_tenant(acme, export_path=path, batch_size=7)
    assert not outcome.resumed
    assert not Tenant.objects.using("owner").filter(pk=acme.pk).exists()
    assert set(live_counts(acme).values()) == {0}
    assert live_counts(globex) == neighbours
    assert outcome.deleted["trades"] == 40 and list(outcome.deleted)[-1] == "users"
    assert actions(acme) == [
        ("tenant.status", "ok"),
        ("tenant.offboard.started", "ok"),
        *[("tenant.offboard.deleted", "ok")] * len(outcome.deleted),
        ("tenant.offboard.finished", "ok"),
    ]


def test_an_interrupted_offboarding_resumes(demo, tmp_path):
    acme = demo["acme"]
    path = export_tenant(acme, tmp_path / "acme").path
    batches = []

    def interrupt_after_three(table: str, deleted: int) -> None:
        batches.append((table, deleted))
        if len(batches) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        offboard_tenant(acme, export_path=path, batch_size=5, progress=interrupt_after_three)
    left = live_counts(acme)
    assert len(batches) == 3 and sum(left.values()) > 0
    assert Tenant.objects.using("owner").get(pk=acme.pk).status == "suspended"
    # The export no longer matches the (partly deleted) data; resuming does not ask it to.
    outcome = offboard_tenant(acme, export_path=path, batch_size=5)
    assert outcome.resumed
    assert not Tenant.objects.using("owner").filter(pk=acme.pk).exists()
    assert set(live_counts(acme).values()) == {0}
    failed = AuditEntry.objects.using("owner").filter(tenant_id=acme.pk, action="tenant.offboard.failed")
    assert failed.exists() and "KeyboardInterrupt" in failed.first().detail["error"]
    started = AuditEntry.objects.using("owner").filter(tenant_id=acme.pk, action="tenant.offboard.started")
    assert started.count() == 1


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_command_needs_a_reason_without_an_export_and_asks_first(demo, monkeypatch):
    with pytest.raises(CommandError, match="--no-export needs --reason"):
        run("offboard_tenant", "acme", "--no-export")
    monkeypatch.setattr("sys.stdin", Terminal())  # an operator at a terminal answers
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Aborted"):
        run("offboard_tenant", "acme", "--no-export", "--reason", "contract ended")
    assert Tenant.objects.using("owner").get(slug="acme").status == "active"
    monkeypatch.setattr("builtins.input", lambda prompt: "acme")
    assert "Offboarded tenant 'acme'" in run("offboard_tenant", "acme", "--no-export", "--reason", "contract ended")
    assert not Tenant.objects.using("owner").filter(slug="acme").exists()


def test_the_admin_action_runs_the_same_service(demo, client, tmp_path):
    platform = demo[settings.PLATFORM_TENANT_SLUG]
    owner_user(platform, "root", is_staff=True, is_superuser=True)
    assert admin_login(client, "root").status_code == 302
    acme = demo["acme"]
    page = client.post("/admin/tenants/tenant/", {"action": "offboard", "_selected_action": [str(acme.pk)]})
    assert page.status_code == 200 and b"Type <code>acme</code> to confirm" in page.content
    path = export_tenant(acme, tmp_path / "acme").path
    form = {"action": "offboard", "_selected_action": [str(acme.pk)], "export_path": str(path), "apply": "1"}
    client.post("/admin/tenants/tenant/", {**form, "confirm_slug": "wrong"})
    assert Tenant.objects.using("owner").filter(pk=acme.pk).exists()
    response = client.post("/admin/tenants/tenant/", {**form, "confirm_slug": "acme"}, follow=True)
    assert b"Offboarded &#x27;acme&#x27;" in response.content or b"Offboarded 'acme'" in response.content
    assert not Tenant.objects.using("owner").filter(pk=acme.pk).exists()
    started = AuditEntry.objects.using("owner").get(tenant_id=acme.pk, action="tenant.offboard.started")
    assert started.actor == f"root@{settings.PLATFORM_TENANT_SLUG}"


# -- issue 20: who may offboard, and no half tenants ---------------------------


def test_plain_staff_cannot_offboard_from_the_admin(demo, client, tmp_path):
    """Item 2: the action needs a superuser; a plain staff user's POST deletes nothing."""
    owner_user(demo[settings.PLATFORM_TENANT_SLUG], "staff", is_staff=True)
    assert admin_login(client, "staff").status_code == 302
    acme = demo["acme"]
    before = live_counts(acme)
    changelist = client.get("/admin/tenants/tenant/")
    assert b'value="offboard"' not in changelist.content
    form = {"action": "offboard", "_selected_action": [str(acme.pk)], "apply": "1", "confirm_slug": "acme"}
    client.post("/admin/tenants/tenant/", {**form, "reason": "no export"}, follow=True)
    path = export_tenant(acme, tmp_path / "acme").path
    client.post("/admin/tenants/tenant/", {**form, "export_path": str(path)}, follow=True)
    acme.refresh_from_db(using="owner")
    assert acme.status == "active" and live_counts(acme) == before


def test_the_admin_offboards_from_a_verified_export_only(demo, client):
    """Item 2: a reason instead of an export is the command's escape hatch, not the admin's."""
    owner_user(demo[settings.PLATFORM_TENANT_SLUG], "root", is_staff=True, is_superuser=True)
    assert admin_login(client, "root").status_code == 302
    acme = demo["acme"]
    before = live_counts(acme)
    form = {"action": "offboard", "_selected_action": [str(acme.pk)], "apply": "1", "confirm_slug": "acme"}
    response = client.post("/admin/tenants/tenant/", {**form, "reason": "contract ended"}, follow=True)
    assert b"verified export only" in response.content
    acme.refresh_from_db(using="owner")
    assert acme.status == "active" and live_counts(acme) == before
    assert not AuditEntry.objects.using("owner").filter(tenant_id=acme.pk, action="tenant.offboard.started").exists()


def interrupted(acme, path) -> None:
    """Offboard until the first table is done, then fail (as a lock held on users did)."""
    first = None

    def stop_at_second_table(table: str, deleted: int) -> None:
        nonlocal first
        first = first or table
        if table != first:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        offboard_tenant(acme, export_path=path, batch_size=1000, progress=stop_at_second_table)


def test_a_tenant_with_an_unfinished_offboarding_cannot_be_activated(demo, tmp_path):
    """Item 6: set_tenant_status active succeeded and its users logged in to an empty firm."""
    acme = demo["acme"]
    interrupted(acme, export_tenant(acme, tmp_path / "acme").path)
    with pytest.raises(CommandError, match="unfinished offboarding"):
        run("set_tenant_status", "acme", "active")
    assert Tenant.objects.using("owner").get(pk=acme.pk).status == "suspended"


def test_resuming_rechecks_the_export_against_what_is_left(demo, tmp_path):
    """Item 6: rows written after the interruption are not deleted unexported."""
    acme = demo["acme"]
    path = export_tenant(acme, tmp_path / "acme").path
    interrupted(acme, path)
    with tenant_context(acme, using="owner"):
        user = User.objects.using("owner").first()
        Trade(tenant=acme, user=user, symbol="NEW", side="buy", quantity=1, price=1).save(using="owner")
    before = live_counts(acme)
    with pytest.raises(OffboardingRefused, match="rows changed since the export"):
        offboard_tenant(acme, export_path=path)
    assert live_counts(acme) == before
    other = export_tenant(demo["acme"], tmp_path / "acme-again").path
    with pytest.raises(OffboardingRefused, match="not the export this offboarding started with"):
        offboard_tenant(acme, export_path=other)
    assert live_counts(acme) == before
