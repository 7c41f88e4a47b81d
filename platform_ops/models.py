"""The audit trail's rows (for reading) and the staff's second-factor devices.

The audit trail's rows, for reading (the admin, `audit_log`).

`managed = False`: the table, its append-only triggers and its privileges are
written by platform_ops.operations.CreateAuditTable, and Django's test flush
(TRUNCATE) must never touch it. Rows are only ever written by
tenants.platform_audit.record().
"""

import time

from django.conf import settings
from django.db import models
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP

from platform_ops import otp_secrets


class AuditEntry(models.Model):
    class Result(models.TextChoices):
        OK = "ok", "ok"
        STARTED = "started", "started"
        REFUSED = "refused", "refused"
        FAILED = "failed", "failed"

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField()
    actor = models.TextField()
    source = models.TextField()
    action = models.TextField()
    # No foreign key: the trail outlives the tenants it names (offboarding).
    tenant_id = models.UUIDField(null=True)
    tenant_slug = models.TextField()
    reason = models.TextField()
    result = models.TextField(choices=Result.choices)
    detail = models.JSONField()

    class Meta:
        managed = False
        db_table = "platform_audit"
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.tenant_slug} {self.result}"


# -- the staff's second factor (django-otp devices) ---------------------------
# (Fields are annotated: django-otp ships no types, so mypy cannot see these as models.)
#
# django-otp's own TOTPDevice and StaticDevice cannot be used here: their
# `user` is a ForeignKey with a database constraint to `users`, which Citus
# refuses (a coordinator-local table cannot reference a distributed one), and
# they store the TOTP seed and the static tokens in plain text. These devices
# subclass the library's abstract Device (so devices_for_user, OTPMiddleware
# and OTPAdminSite find them) with:
# - `user` overridden without a database constraint (`db_constraint=False`);
#   DO_NOTHING so deleting a user never makes Django's collector read this
#   table (on the app role's connection, which may not). Staff are deactivated,
#   not deleted; a device of a deleted user matches nobody (user ids are uuids);
# - the seed encrypted and the recovery codes hashed (platform_ops.otp_secrets).
# The tables live on the owner connection only: the app role has no privilege
# on them (migration 0003), and the admin reaches them through the owner alias.


def _staff_user_field() -> models.ForeignKey:
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        help_text="The staff user this device belongs to.",
    )


class StaffTOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    """An authenticator app: RFC 6238 codes, 6 digits every 30 s, one step of clock drift allowed."""

    id: models.BigAutoField = models.BigAutoField(primary_key=True)
    user = _staff_user_field()
    # A Fernet token of the 20-byte seed, never the seed itself.
    encrypted_seed: models.TextField = models.TextField()
    step: models.PositiveSmallIntegerField = models.PositiveSmallIntegerField(default=30)
    t0: models.BigIntegerField = models.BigIntegerField(default=0)
    digits: models.PositiveSmallIntegerField = models.PositiveSmallIntegerField(default=6)
    tolerance: models.PositiveSmallIntegerField = models.PositiveSmallIntegerField(default=1)
    drift: models.SmallIntegerField = models.SmallIntegerField(default=0)
    # The step of the last accepted code: a code is accepted once (no replay).
    last_t: models.BigIntegerField = models.BigIntegerField(default=-1)

    class Meta:
        db_table = "staff_otp_devices"
        verbose_name = "staff TOTP device"

    @property
    def bin_key(self) -> bytes:
        return otp_secrets.decrypt_seed(self.encrypted_seed)

    def set_seed(self, seed: bytes) -> None:
        self.encrypted_seed = otp_secrets.encrypt_seed(seed)

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    def verify_token(self, token) -> bool:
        """django-otp's TOTPDevice.verify_token, with the seed decrypted for the check only."""
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        verified = False
        if str(token).isdigit():
            try:
                key = self.bin_key
            except otp_secrets.SeedUnreadable:
                key = None
            if key is not None:
                totp = TOTP(key, self.step, self.t0, self.digits, self.drift)
                totp.time = time.time()
                verified = totp.verify(int(token), self.tolerance, self.last_t + 1)
        if verified:
            self.last_t = totp.t()
            self.drift = totp.drift
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
        else:
            self.throttle_increment(commit=True)
        return verified


class StaffRecoveryCodes(TimestampMixin, ThrottlingMixin, Device):
    """Single-use codes for a lost phone: HMAC digests only; a used code's digest is removed."""

    id: models.BigAutoField = models.BigAutoField(primary_key=True)
    user = _staff_user_field()
    digests = models.JSONField(default=list)

    class Meta:
        db_table = "staff_recovery_codes"
        verbose_name = "staff recovery codes"
        verbose_name_plural = "staff recovery codes"

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_STATIC_THROTTLE_FACTOR", 1)

    def set_codes(self, codes: list[str]) -> None:
        self.digests = [otp_secrets.recovery_digest(code) for code in codes]

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        match = otp_secrets.matching_digest(str(token), self.digests)
        if match is None:
            self.throttle_increment(commit=True)
            return False
        # The caller holds this row FOR UPDATE (django-otp's for_verify): two
        # logins racing with one code cannot both remove it.
        self.digests = [digest for digest in self.digests if digest != match]
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        self.save()
        return True
