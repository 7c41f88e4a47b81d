"""Legacy: the single-tenant `users` table as AlphaPulse had it before tenancy.

An existing database adopts this history with `manage.py migrate --fake-initial`
(docs/runbook.md). The app role's grants come first, so it can read and write
every table the owner creates from here on, and never TRUNCATE.
"""

import uuid

import django.contrib.auth.validators
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from tenants.operations import GrantAppRole


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        GrantAppRole(),
        migrations.CreateModel(
            name="User",
            fields=[
                ("password", models.CharField(max_length=128, verbose_name="password")),
                (
                    "last_login",
                    models.DateTimeField(blank=True, null=True, verbose_name="last login"),
                ),
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "username",
                    models.CharField(
                        max_length=150,
                        unique=True,
                        validators=[django.contrib.auth.validators.UnicodeUsernameValidator()],
                    ),
                ),
                ("email", models.EmailField(blank=True, default="", max_length=254)),
                ("is_active", models.BooleanField(default=True)),
                ("is_staff", models.BooleanField(default=False)),
                ("is_superuser", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "db_table": "users",
                "ordering": ["username"],
            },
        ),
    ]
