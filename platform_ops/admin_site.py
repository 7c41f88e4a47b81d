"""`/admin/` asks for a second factor: django-otp's OTPAdminSite with one login form.

Staff type their username, password and a code on one page: the 6 digits of
their authenticator app, or one of their recovery codes
(platform_ops.staff_otp.device_for_code picks the device by the code's shape;
django-otp's own form asks for a device choice on a second page). A session
is admitted only once a device verified it (OTPAdminSite.has_permission:
`request.user.is_verified()`, from django_otp.middleware.OTPMiddleware).

The check runs in one transaction on the owner connection, the device row
locked FOR UPDATE (throttling and a recovery code's single use hold under
concurrent logins); a refused code commits its throttle count and its audit
entry (`admin.otp_failed`, with a reason code) and the login page answers 200
with the error. A recovery code used is recorded too
(`staff_otp.recovery_code_used`, with how many are left). Successful logins
are recorded by platform_ops.signals (`admin.login`, naming the factor).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.forms import otp_verification_failed

from platform_ops import staff_otp
from platform_ops.models import StaffRecoveryCodes
from tenants import platform_audit
from tenants.constants import OWNER_DATABASE
from tenants.models import User

NOT_ENROLLED = (
    "This account has no second factor yet: an operator enrolls it with "
    "`manage.py enroll_staff_otp <username>` (docs/admin.md)."
)


class StaffLoginForm(OTPAdminAuthenticationForm):
    # One code field; no device list and no challenge button (TOTP needs no challenge).
    otp_device = None  # type: ignore[assignment]
    otp_challenge = None  # type: ignore[assignment]
    otp_token = forms.CharField(
        label="Code",
        required=False,
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}
        ),
        help_text="The 6 digits your authenticator app shows now, or one of your recovery codes.",
    )

    def clean_otp(self, user: User | None) -> None:
        if user is None:
            return  # the password was wrong: Django's own error, and user_login_failed
        failure: ValidationError | None = None
        with transaction.atomic(using=OWNER_DATABASE):
            user.otp_device = None  # type: ignore[attr-defined]
            try:
                user.otp_device = self._verified_device(user, (self.cleaned_data.get("otp_token") or "").strip())  # type: ignore[attr-defined]
            except ValidationError as exc:
                # Kept out of the atomic block, so the throttle count and the entry commit.
                failure = exc
                self._record(user, "admin.otp_failed", result="refused", reason=str(exc.code))
        if failure is not None:
            raise failure

    def _verified_device(self, user: User, code: str):
        device = staff_otp.device_for_code(user, code) if code else None
        if device is None and not staff_otp.has_device(user):
            raise ValidationError(NOT_ENROLLED, code="not_enrolled")
        if not code:
            raise ValidationError(self.otp_error_messages["token_required"], code="token_required")
        if device is None:
            raise ValidationError(self.otp_error_messages["invalid_token"], code="invalid_token")
        allowed, extra = device.verify_is_allowed()
        if not allowed:
            raise ValidationError(self.otp_error_messages["n_failed_attempts"] % (extra or {}), code="throttled")
        if not device.verify_token(code):
            otp_verification_failed.send(sender=self.__class__, user=user)
            raise ValidationError(self.otp_error_messages["invalid_token"], code="invalid_token")
        if isinstance(device, StaffRecoveryCodes):
            left = staff_otp.recovery_codes_left(device)
            self._record(user, "staff_otp.recovery_code_used", detail={"recovery_codes_left": left})
        return device

    def _record(self, user: User, action: str, **entry: Any) -> None:
        detail = {"user": user.username, **entry.pop("detail", {})}
        platform_audit.record(
            action,
            request=self.request,
            tenant=user.tenant,
            actor=f"{user.username}@{user.tenant.slug} (password checked, not logged in)",
            detail=detail,
            **entry,
        )


class StaffAdminSite(OTPAdminSite):
    """`admin.site` (platform_ops.admin_config): staff need a verified second factor."""

    login_form = StaffLoginForm
    login_template = "platform_ops/admin_login.html"

    def __init__(self, name: str = "admin") -> None:
        # OTPAdminSite names itself "otpadmin"; the project's URLs say "admin:...".
        super().__init__(name)
