"""US-001: the tenants table (the seed's idx_tenants_slug is the unique index on slug)."""

import uuid

import django.contrib.auth.validators
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_legacy_users")]

    operations = [
        migrations.CreateModel(
            name="Tenant",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("name", models.CharField(max_length=255)),
                ("slug", models.SlugField(max_length=100, unique=True)),
                (
                    "subscription_tier",
                    models.CharField(
                        choices=[
                            ("free", "Free"),
                            ("starter", "Starter"),
                            ("pro", "Pro"),
                            ("enterprise", "Enterprise"),
                        ],
                        default="pro",
                        max_length=50,
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[("active", "Active"), ("suspended", "Suspended")],
                        default="active",
                        max_length=50,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "db_table": "tenants",
                "ordering": ["name"],
                "indexes": [models.Index(fields=["status"], name="idx_tenants_status")],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("status__in", ["active", "suspended"])),
                        name="tenants_status_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            (
                                "subscription_tier__in",
                                ["free", "starter", "pro", "enterprise"],
                            )
                        ),
                        name="tenants_tier_valid",
                    ),
                ],
            },
        ),
    ]
