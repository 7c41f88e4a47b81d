"""The admin's "Offboard" action on tenants: the same service as `manage.py offboard_tenant`.

One tenant at a time, through a confirmation page that asks for the server
path of its verified export (or a reason for having none) and the tenant's
slug typed out. The request runs the deletion itself, in short batches; for
a very large tenant prefer the command (a proxy may time the request out, and
the command resumes just the same afterwards).
"""

from __future__ import annotations

from pathlib import Path

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from platform_ops.offboarding import OffboardingRefused, live_counts, offboard_tenant
from tenants.models import Tenant


@admin.action(description="Offboard the selected tenant (verified export, then delete all its data)")
def offboard(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Tenant]):
    tenants = list(queryset[:2])
    if len(tenants) != 1:
        modeladmin.message_user(request, "Offboard one tenant at a time.", messages.WARNING)
        return None
    (tenant,) = tenants
    if request.POST.get("apply"):
        export = request.POST.get("export_path", "").strip()
        reason = request.POST.get("reason", "").strip()
        if request.POST.get("confirm_slug", "").strip() != tenant.slug:
            modeladmin.message_user(request, f"Type '{tenant.slug}' to confirm: nothing changed.", messages.ERROR)
            return None
        try:
            outcome = offboard_tenant(
                tenant,
                export_path=Path(export) if export else None,
                no_export_reason="" if export else reason,
                request=request,
            )
        except OffboardingRefused as exc:
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
