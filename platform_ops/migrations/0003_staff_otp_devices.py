"""The staff's second-factor devices (platform_ops.models: StaffTOTPDevice, StaffRecoveryCodes).

Two coordinator-local tables on Citus (like platform_audit): staff rows, never
a tenant's, and never distributed. `user_id` has no database constraint: Citus
refuses a foreign key from a local table to the distributed `users`. After
tenants 0010 (the dependency below) the owner's default privileges give the app
role nothing on new tables, so these are the owner's alone
(tests/platform_ops/test_staff_otp.py reads them as the app role and is refused).
Reversible: the reverse drops both tables (every staff member re-enrolls).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("platform_ops", "0002_i20_audit_database_stamps"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        # The app role's least privilege (default privileges that grant it nothing on new tables).
        ("tenants", "0010_app_role_least_privilege"),
    ]

    operations = [
        migrations.CreateModel(
            name="StaffRecoveryCodes",
            fields=[
                ("name", models.CharField(help_text="The human-readable name of this device.", max_length=64)),
                ("confirmed", models.BooleanField(default=True, help_text="Is this device ready for use?")),
                (
                    "throttling_failure_timestamp",
                    models.DateTimeField(
                        blank=True,
                        default=None,
                        help_text="A timestamp of the last failed verification attempt. Null if last attempt succeeded.",
                        null=True,
                    ),
                ),
                (
                    "throttling_failure_count",
                    models.PositiveIntegerField(default=0, help_text="Number of successive failed attempts."),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        auto_now_add=True,
                        help_text="The date and time when this device was initially created in the system.",
                        null=True,
                    ),
                ),
                (
                    "last_used_at",
                    models.DateTimeField(
                        blank=True, help_text="The most recent date and time this device was used.", null=True
                    ),
                ),
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("digests", models.JSONField(default=list)),
                (
                    "user",
                    models.ForeignKey(
                        db_constraint=False,
                        help_text="The staff user this device belongs to.",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "staff recovery codes",
                "verbose_name_plural": "staff recovery codes",
                "db_table": "staff_recovery_codes",
            },
        ),
        migrations.CreateModel(
            name="StaffTOTPDevice",
            fields=[
                ("name", models.CharField(help_text="The human-readable name of this device.", max_length=64)),
                ("confirmed", models.BooleanField(default=True, help_text="Is this device ready for use?")),
                (
                    "throttling_failure_timestamp",
                    models.DateTimeField(
                        blank=True,
                        default=None,
                        help_text="A timestamp of the last failed verification attempt. Null if last attempt succeeded.",
                        null=True,
                    ),
                ),
                (
                    "throttling_failure_count",
                    models.PositiveIntegerField(default=0, help_text="Number of successive failed attempts."),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        auto_now_add=True,
                        help_text="The date and time when this device was initially created in the system.",
                        null=True,
                    ),
                ),
                (
                    "last_used_at",
                    models.DateTimeField(
                        blank=True, help_text="The most recent date and time this device was used.", null=True
                    ),
                ),
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("encrypted_seed", models.TextField()),
                ("step", models.PositiveSmallIntegerField(default=30)),
                ("t0", models.BigIntegerField(default=0)),
                ("digits", models.PositiveSmallIntegerField(default=6)),
                ("tolerance", models.PositiveSmallIntegerField(default=1)),
                ("drift", models.SmallIntegerField(default=0)),
                ("last_t", models.BigIntegerField(default=-1)),
                (
                    "user",
                    models.ForeignKey(
                        db_constraint=False,
                        help_text="The staff user this device belongs to.",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "staff TOTP device",
                "db_table": "staff_otp_devices",
            },
        ),
    ]
