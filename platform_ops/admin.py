"""The audit trail in the admin: read-only for everyone (no add, change or delete),
and the owner role could not change a row even if the admin tried. The staff's
second-factor devices: read-only, for superusers. Also mounts the
"Offboard" action on the tenants' admin (tenants never imports platform_ops)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from platform_ops.admin_actions import may_offboard, offboard
from platform_ops.models import AuditEntry, StaffRecoveryCodes, StaffTOTPDevice
from tenants.admin import TenantAdmin
from tenants.read_only_admin import ReadOnlyModelAdmin

TenantAdmin.actions = (*TenantAdmin.actions, offboard)


# The action's permission (`permissions=["offboard"]`): superusers only.
def _has_offboard_permission(self, request: HttpRequest) -> bool:
    return may_offboard(request)


TenantAdmin.has_offboard_permission = _has_offboard_permission  # type: ignore[attr-defined]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyModelAdmin):
    list_display = ("at", "actor", "source", "action", "tenant_slug", "result", "reason")
    list_filter = ("result", "action")
    search_fields = ("actor", "action", "tenant_slug", "reason")
    date_hierarchy = "at"
    actions = None

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [f.name for f in AuditEntry._meta.fields]


@admin.register(StaffTOTPDevice)
class StaffTOTPDeviceAdmin(ReadOnlyModelAdmin):
    """Who is enrolled, when last used, failures in a row: read-only, superusers only.

    Enrolling and replacing are `manage.py enroll_staff_otp` (audited, and the
    secrets shown once, on the operator's terminal). No join to `users` (on Citus
    this table is coordinator-local and `users` distributed): the user is read
    per row, and staff are few.
    """

    list_display = ("staff_user", "name", "created_at", "last_used_at", "throttling_failure_count", "codes_left")
    list_select_related = ()
    fields = list_display
    readonly_fields = list_display
    actions = None

    @admin.display(description="user")
    def staff_user(self, device: StaffTOTPDevice) -> str:
        return str(device.user)

    @admin.display(description="recovery codes left")
    def codes_left(self, device: StaffTOTPDevice) -> int:
        codes = StaffRecoveryCodes.objects.using(device._state.db).filter(user_id=device.user_id).first()
        return len(codes.digests) if codes is not None else 0

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return bool(request.user.is_superuser)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser) and super().has_module_permission(request)
