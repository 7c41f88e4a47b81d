"""Sessions and API keys (issue 23): `user_sessions` and `api_keys`, two tenant tables like the others.

For each table:
- tenant_id NOT NULL referencing tenants(id) ON DELETE CASCADE, and the
  composite (tenant_id, user_id) -> users(tenant_id, id) key (a row can only
  name a user of its own tenant; a plain user key would be checked past RLS);
- forced RLS and the tenant policies (EnableTenantRLS, the inline shape);
- the app role may SELECT, INSERT and UPDATE: a session is ended and a key
  revoked by an UPDATE, rows are never deleted through the API;
- on a Citus coordinator: distributed by tenant_id, colocated with users, its
  primary key (tenant_id, id), the keys added once distributed (the 0014
  order). On PostgreSQL the keys are added at once.
Reverse (`migrate tenants 0015`): both tables and their rows go (every
session then ends: tokens carry a session the database no longer knows).
"""

import uuid

import django.db.models.deletion
import django.db.models.manager
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from tenants.catalog.distribution_operations import (
    AddForeignKeyOffCitus,
    AddForeignKeyOnCitus,
    DistributeTenantTable,
    DropForeignKeyBeforeDistributing,
    DropForeignKeyOnCitus,
)
from tenants.catalog.privilege_operations import GrantTenantTablePrivileges
from tenants.catalog.rls_operations import EnableTenantRLS

# The policy shape this migration writes, frozen (tenants 0011's inline form).
CURRENT_TENANT = "NULLIF(current_setting('app.current_tenant_id', true), '')::uuid"


def _keys(table: str) -> list[dict]:
    return [
        dict(
            table=table,
            name=f"fk_{table}_tenant",
            columns=["tenant_id"],
            references="tenants",
            referenced_columns=["id"],
            on_delete_cascade=True,
        ),
        dict(
            table=table,
            name=f"fk_{table}_tenant_user",
            columns=["tenant_id", "user_id"],
            references="users",
            referenced_columns=["tenant_id", "id"],
        ),
    ]


def _tenant_table(table: str) -> list:
    keys = _keys(table)
    return [
        *(AddForeignKeyOffCitus(**key) for key in keys),
        EnableTenantRLS(table, current_tenant=CURRENT_TENANT),
        GrantTenantTablePrivileges(table, never_deleted=True),
        # On a coordinator (no-ops elsewhere): distributed and colocated like the other tenant tables.
        # The keys come off first (a database moved onto a cluster arrives with them). The user
        # key is not put back by a reverse: a local table may not reference the distributed users.
        DropForeignKeyBeforeDistributing(**keys[1]),
        DropForeignKeyOnCitus(**keys[0]),
        DistributeTenantTable(table, colocate_with="users"),
        *(AddForeignKeyOnCitus(**key) for key in keys),
    ]


def _tenant_field() -> models.ForeignKey:
    return models.ForeignKey(
        db_constraint=False,
        db_index=False,
        editable=False,
        on_delete=django.db.models.deletion.CASCADE,
        related_name="+",
        to="tenants.tenant",
    )


def _user_field() -> models.ForeignKey:
    return models.ForeignKey(
        db_constraint=False,
        db_index=False,
        editable=False,
        on_delete=django.db.models.deletion.PROTECT,
        related_name="+",
        to=settings.AUTH_USER_MODEL,
    )


class Migration(migrations.Migration):
    dependencies = [("tenants", "0016_i24_idempotency_keys")]

    operations = [
        migrations.CreateModel(
            name="UserSession",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("refresh_jti", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("refreshed_at", models.DateTimeField(blank=True, null=True)),
                ("ended_at", models.DateTimeField(blank=True, null=True)),
                ("end_reason", models.CharField(blank=True, default="", max_length=32)),
                ("tenant", _tenant_field()),
                ("user", _user_field()),
            ],
            options={
                "verbose_name": "user session",
                "db_table": "user_sessions",
                "ordering": ["-created_at"],
                "indexes": [
                    models.Index(fields=["tenant"], name="idx_sessions_tenant_id"),
                    models.Index(fields=["tenant", "user"], name="idx_sessions_tenant_user"),
                ],
            },
            managers=[("all_tenants", django.db.models.manager.Manager())],
        ),
        *_tenant_table("user_sessions"),
        migrations.CreateModel(
            name="ApiKey",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100)),
                ("prefix", models.CharField(max_length=16)),
                ("hashed_secret", models.CharField(max_length=64)),
                ("scopes", models.JSONField(default=list)),
                ("expires_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                ("tenant", _tenant_field()),
                ("user", _user_field()),
            ],
            options={
                "verbose_name": "API key",
                "db_table": "api_keys",
                "ordering": ["-created_at"],
                "indexes": [
                    models.Index(fields=["tenant"], name="idx_api_keys_tenant_id"),
                    models.Index(fields=["tenant", "user"], name="idx_api_keys_tenant_user"),
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("tenant", "prefix"), name="api_keys_tenant_prefix_uniq")
                ],
            },
            managers=[("all_tenants", django.db.models.manager.Manager())],
        ),
        *_tenant_table("api_keys"),
    ]
