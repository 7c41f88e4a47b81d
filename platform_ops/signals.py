"""Audit entries for actions Django itself performs: admin logins (and failed
ones) and the us004 migration applied or unapplied.

An admin login's entry names the second factor that verified it
(`authenticator app` or `recovery codes`); a right password with a wrong or
missing code is recorded by the login form itself (`admin.otp_failed`,
platform_ops.admin_site).

Admin logins: Django's `user_logged_in` / `user_login_failed`, for /admin/
requests; and every API login attempt at the platform tenant (the staff get
no API tokens: tenants.http.auth refuses them and sends `user_login_failed`
naming the tenant). Other API logins are tenants' own, throttled, and not
platform actions. Failed
logins are written durably: the admin's login view does not commit anything
else for them.

us004: `post_migrate` carries the plan that just ran; an entry per direction
when it holds tenants 0008. Sent once per app, so only our own app's signal
acts on it; skipped when the audit table is not there (its own rollback).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from tenants import platform_audit as audit

US004 = ("tenants", "0008_us004_enable_rls")


def _is_admin(request: Any) -> bool:
    return request is not None and str(getattr(request, "path_info", "")).startswith("/admin/")


@receiver(user_logged_in, dispatch_uid="platform_ops.audit_admin_login")
def audit_admin_login(sender, request=None, user=None, **kwargs) -> None:
    if _is_admin(request):
        # The device that verified the second factor (platform_ops.admin_site.StaffLoginForm).
        device = getattr(user, "otp_device", None)
        second_factor = device.name if device is not None else "none"
        audit.record(
            "admin.login",
            request=request,
            tenant=getattr(user, "tenant", None),
            detail={"second_factor": second_factor},
        )


@receiver(user_login_failed, dispatch_uid="platform_ops.audit_admin_login_failed")
def audit_admin_login_failed(sender, credentials=None, request=None, **kwargs) -> None:
    credentials = credentials or {}
    if credentials.get("tenant") == settings.PLATFORM_TENANT_SLUG:
        audit.record(
            "api.staff_login_refused",
            request=request,
            tenant_slug=settings.PLATFORM_TENANT_SLUG,
            actor=f"{credentials.get('username') or '?'} (not logged in)",
            result="refused",
            detail={"path": str(getattr(request, "path_info", ""))},
            durable=True,
        )
    elif _is_admin(request):
        # `credentials` has the password already replaced by Django's cleansing.
        username = credentials.get("username", "")
        audit.record(
            "admin.login_failed",
            request=request,
            actor=f"{username or '?'} (not logged in)",
            result="refused",
            durable=True,
        )


@receiver(post_migrate, dispatch_uid="platform_ops.audit_us004")
def audit_us004_migration(sender, app_config=None, using=None, plan=None, **kwargs) -> None:
    if app_config is None or app_config.name != "platform_ops" or not plan:
        return
    for migration, backwards in plan:
        if (migration.app_label, migration.name) == US004 and audit.audit_table_exists(using):
            audit.record(
                "migration.us004.unapply" if backwards else "migration.us004.apply",
                detail={"migration": ".".join(US004), "direction": "backwards" if backwards else "forwards"},
                alias=using,
            )
