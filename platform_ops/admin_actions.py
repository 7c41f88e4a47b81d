"""The admin's "Offboard" action on tenants: the same service as `manage.py offboard_tenant`.

Destructive, so it has a permission of its own: only superusers see or run it
(`TenantAdmin.has_offboard_permission`; plain staff suspend, they never
delete). One tenant at a time, through a confirmation page that asks for the
server path of its verified export (required here: offboarding without an
export is for the command, `--no-export --reason`) and the tenant's slug typed
out. The service records who (the admin user) in the audit trail, refusals
included. The request runs the deletion itself, in short batches; for
a very large tenant prefer the command (a proxy may time the request out, and
the command resumes just the same afterwards).
"""

from __future__ import annotations

from pathlib import Path

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from platform_ops.offboarding import OffboardingRefused, live_counts, offboard_tenant
from tenants import platform_audit as audit
from tenants.models import Tenant


def may_offboard(request: HttpRequest) -> bool:
    """Superusers only: the admin's one action that deletes data."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_superuser)


@admin.action(
    description="Offboard the selected tenant (verified export, then delete all its data)", permissions=["offboard"]
)
def offboard(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Tenant]):
    if not may_offboard(request):  # Django filters the action out already; never rely on one check
        raise PermissionDenied("Only superusers may offboard a tenant.")
    tenants = list(queryset[:2])
    if len(tenants) != 1:
        modeladmin.message_user(request, "Offboard one tenant at a time.", messages.WARNING)
        return None
    (tenant,) = tenants
    if request.POST.get("apply"):
        export = request.POST.get("export_path", "").strip()
        if request.POST.get("confirm_slug", "").strip() != tenant.slug:
            modeladmin.message_user(request, f"Type '{tenant.slug}' to confirm: nothing changed.", messages.ERROR)
            return None
        if not export:
            modeladmin.message_user(
                request,
                "The admin offboards from a verified export only: give its path (manage.py export_tenant). "
                "Nothing changed.",
                messages.ERROR,
            )
            return None
        try:
            outcome = offboard_tenant(tenant, export_path=Path(export), request=request)
        except OffboardingRefused as exc:
            audit.record(
                "tenant.offboard", tenant=tenant, result="refused", reason=str(exc), request=request, durable=True
            )
            modeladmin.message_user(request, str(exc), messages.ERROR)
            return None
        modeladmin.message_user(
            request,
            f"Offboarded '{tenant.slug}': {sum(outcome.deleted.values())} rows deleted, tenant gone.",
            messages.SUCCESS,
        )
        return None
    return TemplateResponse(
        request,
        "platform_ops/offboard_confirm.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": f"Offboard {tenant}",
            "tenant": tenant,
            "counts": live_counts(tenant),
            "opts": modeladmin.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        },
    )
