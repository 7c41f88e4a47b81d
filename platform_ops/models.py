"""The audit trail's rows, for reading (the admin, `audit_log`).

`managed = False`: the table, its append-only triggers and its privileges are
written by platform_ops.operations.CreateAuditTable, and Django's test flush
(TRUNCATE) must never touch it. Rows are only ever written by
tenants.platform_audit.record().
"""

from django.db import models


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
