"""Platform staff for the admin tests: rows made on the owner connection, and the admin login.

/admin/ asks for a second factor (platform_ops.admin_site): `admin_login` enrolls a
platform staff user on first use (platform_ops.staff_otp.enroll, as the command
does) and types the authenticator's current code, computed from the seed the
enrollment's provisioning URI carries.
"""

from __future__ import annotations

import time
from base64 import b32decode
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django_otp.oath import TOTP

from platform_ops import staff_otp
from platform_ops.models import StaffTOTPDevice
from tenants.models import Tenant, User
from tenants.platform_audit import Actor

OWNER = "owner"
STAFF_PASSWORD = "staff-password-123"
TEST_ACTOR = Actor("pytest", "tests")


def owner_tenant(slug: str, **fields) -> Tenant:
    return Tenant.objects.using(OWNER).create(slug=slug, name=fields.pop("name", slug.title()), **fields)


def owner_user(tenant: Tenant, username: str, password: str = STAFF_PASSWORD, **fields) -> User:
    user = User(tenant=tenant, username=username, **fields)
    user.set_password(password)
    user.save(using=OWNER)
    return user


def seed_of(provisioning_uri: str) -> bytes:
    """The TOTP seed an otpauth:// URI carries (what an authenticator app reads from the QR code)."""
    (secret,) = parse_qs(urlsplit(provisioning_uri).query)["secret"]
    return b32decode(secret)


def code_at(seed: bytes, step: int) -> str:
    totp = TOTP(seed)
    totp.time = step * 30
    return f"{totp.token():06d}"


def current_code(seed: bytes) -> str:
    return code_at(seed, int(time.time()) // 30)


_seeds: dict[object, bytes] = {}


def staff_code(username: str) -> str:
    """The current authenticator code of platform staff `username` (enrolled on first use);
    '' for anyone who is not platform staff."""
    user = User.all_tenants.using(OWNER).filter(tenant__slug=settings.PLATFORM_TENANT_SLUG, username=username).first()
    if user is None or not (user.is_staff or user.is_superuser):
        return ""
    device = StaffTOTPDevice.objects.using(OWNER).filter(user=user).first()
    if device is None or user.pk not in _seeds:
        enrollment = staff_otp.enroll(user, replace=True, by=TEST_ACTOR)
        _seeds[user.pk] = seed_of(enrollment.provisioning_uri)
    else:
        # Each code is accepted once; a test logs the same user in several times a minute.
        StaffTOTPDevice.objects.using(OWNER).filter(pk=device.pk).update(last_t=-1)
    return current_code(_seeds[user.pk])


def admin_login(client, username: str, password: str = STAFF_PASSWORD, code: str | None = None):
    if code is None:
        code = staff_code(username)
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password, "otp_token": code})
