"""The tenant audit log's table (CONTRACT section 9): a tenant table under forced
RLS that the app role may only INSERT into and SELECT from.

Runs as the app role: record_event writes in the caller's transaction and
tenant, another tenant never sees the event, and neither the ORM nor raw SQL
can change or delete one (history is written once). Without a tenant context
nothing is written.
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from tenants.context import NoTenantContext
from tenants.models import AppendOnly, TenantAuditEvent
from tenants.tenant_audit import SYSTEM_ACTOR, actor_of, record_event

pytestmark = pytest.mark.django_db


def refused(statement: str, params) -> str:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
    except DatabaseError as exc:
        return str(exc)
    return ""


def test_record_event_writes_one_row_of_the_current_tenant(tenant_a, tenant_b, as_tenant):
    with as_tenant(tenant_a):
        record_event("user.created", actor="u-1", target_type="user", target_id="u-2", details={"role": "viewer"})
        (event,) = TenantAuditEvent.objects.all()
    assert (event.tenant_id, event.action, event.actor, event.target_id) == (tenant_a.pk, "user.created", "u-1", "u-2")
    assert event.details == {"role": "viewer"}
    with as_tenant(tenant_b):
        assert TenantAuditEvent.objects.count() == 0
        assert TenantAuditEvent.all_tenants.count() == 0  # RLS, not only the manager


def test_record_event_outside_a_tenant_writes_nothing():
    with pytest.raises(NoTenantContext):
        record_event("user.created", actor=SYSTEM_ACTOR)


def test_an_event_rolls_back_with_its_change(tenant_a, as_tenant):
    with as_tenant(tenant_a):
        with pytest.raises(RuntimeError), transaction.atomic():
            record_event("trade.deleted", actor="u-1")
            raise RuntimeError("the change failed")
        assert TenantAuditEvent.objects.count() == 0


def test_app_role_cannot_update_or_delete_events(tenant_a, as_tenant):
    with as_tenant(tenant_a):
        record_event("trade.changed", actor="u-1", details={"before": {"price": "1"}, "after": {"price": "2"}})
        assert "permission denied for table audit_events" in refused(
            "UPDATE audit_events SET actor = 'someone else' WHERE tenant_id = %s", [tenant_a.pk]
        )
        assert "permission denied for table audit_events" in refused(
            "DELETE FROM audit_events WHERE tenant_id = %s", [tenant_a.pk]
        )
        assert "permission denied for table audit_events" in refused("TRUNCATE audit_events", None)
        assert TenantAuditEvent.objects.get().actor == "u-1"


def test_orm_refuses_to_change_or_delete_an_event(tenant_a, as_tenant):
    with as_tenant(tenant_a):
        record_event("user.changed", actor="u-1")
        event = TenantAuditEvent.objects.get()
        event.actor = "forged"
        with pytest.raises(AppendOnly):
            event.save()
        with pytest.raises(AppendOnly):
            event.delete()
        assert TenantAuditEvent.objects.get().actor == "u-1"


def test_an_event_cannot_be_written_into_another_tenant(tenant_a, tenant_b, as_tenant):
    with as_tenant(tenant_a):
        assert "row-level security" in refused(
            "INSERT INTO audit_events (id, tenant_id, action, actor, target_type, target_id, details, created_at) "
            "VALUES (gen_random_uuid(), %s, 'x', 'y', '', '', '{}', now())",
            [tenant_b.pk],
        )


class _Key:
    id = "k-1"
    scopes = ("read",)


class _Request:
    def __init__(self, user, api_key=None):
        self.tenant_user = user
        self.api_key = api_key


def test_actor_labels(user_a):
    assert actor_of(_Request(user_a)) == str(user_a.pk)
    assert actor_of(_Request(user_a, _Key())) == "api_key:k-1"
