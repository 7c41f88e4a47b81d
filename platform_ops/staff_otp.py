"""The staff's second factor: enrolling a device, and finding the device a typed code is for.

One answer to "which staff may have a second factor" (platform-tenant users
with is_staff or is_superuser, the only ones the admin lets in) and to "how is
one enrolled": `enroll()` replaces whatever the user had by a new TOTP seed
and ten new recovery codes, in one transaction with its audit entry
(`staff_otp.enrolled`), on the owner connection (the app role has no access to
these tables). The seed and the codes leave this module once, in the returned
Enrollment, for the command to show; only their encrypted / hashed forms are
stored (platform_ops.otp_secrets).

Refusals are StaffOTPRefused, with a message that says what to do.
"""

from __future__ import annotations

from base64 import b32encode
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import transaction

from platform_ops import otp_secrets
from platform_ops.models import StaffRecoveryCodes, StaffTOTPDevice
from tenants import platform_audit
from tenants.constants import OWNER_DATABASE
from tenants.models import User
from tenants.platform_audit import Actor

TOTP_NAME = "authenticator app"
RECOVERY_NAME = "recovery codes"


class StaffOTPRefused(Exception):
    """An enrollment that is not allowed; nothing was changed."""


@dataclass(frozen=True)
class Enrollment:
    user: User
    provisioning_uri: str
    recovery_codes: list[str]
    replaced: bool


def staff_user(username: str, *, using: str = OWNER_DATABASE) -> User:
    """The platform tenant's staff user `username` (staff exist in that tenant only)."""
    slug = settings.PLATFORM_TENANT_SLUG
    user = (
        User.all_tenants.using(using)  # platform work: staff of the platform tenant, no tenant context
        .select_related("tenant")
        .filter(tenant__slug=slug, username=username)
        .first()
    )
    if user is None:
        raise StaffOTPRefused(f"The platform tenant '{slug}' has no user '{username}'.")
    if not (user.is_staff or user.is_superuser):
        raise StaffOTPRefused(
            f"'{username}' is not staff: only staff log in to /admin/, so only staff get a second factor."
        )
    return user


def has_device(user: User, *, using: str = OWNER_DATABASE) -> bool:
    return StaffTOTPDevice.objects.using(using).filter(user=user, confirmed=True).exists()


def provisioning_uri(user: User, seed: bytes) -> str:
    """The otpauth:// URI authenticator apps read (Google's Key Uri Format), as django-otp's TOTPDevice builds it."""
    issuer = settings.OTP_TOTP_ISSUER.replace(":", "")
    label = f"{issuer}:{user.get_username()}@{user.tenant.slug}"
    params = urlencode({"secret": b32encode(seed).decode(), "algorithm": "SHA1", "digits": 6, "period": 30})
    return f"otpauth://totp/{quote(label)}?{params}&issuer={quote(issuer)}"


def enroll(user: User, *, replace: bool = False, by: Actor, using: str = OWNER_DATABASE) -> Enrollment:
    """A new TOTP seed and new recovery codes for `user`; the old ones stop working at once."""
    with transaction.atomic(using=using):
        existing = StaffTOTPDevice.objects.using(using).select_for_update().filter(user=user)
        had = existing.exists()
        if had and not replace:
            raise StaffOTPRefused(
                f"'{user.username}' already has a second factor: pass --replace to issue a new one "
                "(the old authenticator and recovery codes stop working)."
            )
        existing.delete()
        StaffRecoveryCodes.objects.using(using).filter(user=user).delete()
        seed = otp_secrets.new_seed()
        device = StaffTOTPDevice(user=user, name=TOTP_NAME)
        device.set_seed(seed)
        device.save(using=using)
        codes = otp_secrets.new_recovery_codes()
        recovery = StaffRecoveryCodes(user=user, name=RECOVERY_NAME)
        recovery.set_codes(codes)
        recovery.save(using=using)
        platform_audit.record(
            "staff_otp.enrolled",
            tenant=user.tenant,
            by=by,
            detail={"user": user.username, "replaced": had, "recovery_codes": len(codes)},
            alias=using,
        )
    return Enrollment(user=user, provisioning_uri=provisioning_uri(user, seed), recovery_codes=codes, replaced=had)


def is_recovery_code(code: str) -> bool:
    """Authenticator codes are digits only; recovery codes always hold letters."""
    return not otp_secrets.normalize_code(code).isdigit()


def device_for_code(user: User, code: str) -> StaffTOTPDevice | StaffRecoveryCodes | None:
    """The one device a typed code is checked against, locked FOR UPDATE (the caller holds a transaction).

    Chosen by the code's shape, so a login never tries a code on every device
    in turn (which would count a failure on each device that did not match).
    """
    model: type[StaffTOTPDevice] | type[StaffRecoveryCodes]
    model = StaffRecoveryCodes if is_recovery_code(code) else StaffTOTPDevice
    return model.objects.using(OWNER_DATABASE).select_for_update().filter(user=user, confirmed=True).first()


def recovery_codes_left(device: StaffRecoveryCodes) -> int:
    return len(device.digests)
