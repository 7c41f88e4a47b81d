"""The audit trail in the admin: read-only for everyone (no add, change or delete),
and the owner role could not change a row even if the admin tried. Also mounts the
"Offboard" action on the tenants' admin (tenants never imports platform_ops)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from platform_ops.admin_actions import may_offboard, offboard
from platform_ops.models import AuditEntry
from tenants.admin import TenantAdmin

TenantAdmin.actions = (*TenantAdmin.actions, offboard)


# The action's permission (`permissions=["offboard"]`): superusers only.
def _has_offboard_permission(self, request: HttpRequest) -> bool:
    return may_offboard(request)


TenantAdmin.has_offboard_permission = _has_offboard_permission  # type: ignore[attr-defined]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "source", "action", "tenant_slug", "result", "reason")
    list_filter = ("result", "action")
    search_fields = ("actor", "action", "tenant_slug", "reason")
    date_hierarchy = "at"
    actions = None

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
