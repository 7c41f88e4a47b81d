"""`idempotency_keys`: the first answer to a POST sent with an Idempotency-Key, per tenant.

A tenant table like the others: tenant_id NOT NULL referencing tenants(id) ON
DELETE CASCADE, forced RLS with the tenant policies, the app role read-write
(a key is claimed, answered, and taken over once expired: tenants.http.idempotency),
one row per (tenant_id, principal, key); on a Citus coordinator distributed by
tenant_id and colocated with users, its key to `tenants` added once distributed.
Reverse (`migrate tenants 0015`): the table and its keys go (clients lose only
their replays).
"""

import uuid

import django.db.models.deletion
import django.db.models.manager
import django.utils.timezone
from django.db import migrations, models

from tenants.catalog.distribution_operations import (
    AddForeignKeyOffCitus,
    AddForeignKeyOnCitus,
    DistributeTenantTable,
    DropForeignKeyOnCitus,
)
from tenants.catalog.privilege_operations import GrantTenantTablePrivileges
from tenants.catalog.rls_operations import EnableTenantRLS

# The policy shape this migration writes, frozen (tenants 0011's inline form).
CURRENT_TENANT = "NULLIF(current_setting('app.current_tenant_id', true), '')::uuid"
TENANT_KEY = dict(
    table="idempotency_keys",
    name="fk_idempotency_keys_tenant",
    columns=["tenant_id"],
    references="tenants",
    referenced_columns=["id"],
    on_delete_cascade=True,
)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0015_i26_tenant_slug_lower_case")]

    operations = [
        migrations.CreateModel(
            name="IdempotencyKey",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("principal", models.CharField(max_length=64)),
                ("key", models.CharField(max_length=255)),
                ("fingerprint", models.CharField(max_length=64)),
                ("status_code", models.PositiveSmallIntegerField(null=True)),
                ("body", models.JSONField(null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "tenant",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenants.tenant",
                    ),
                ),
            ],
            options={
                "db_table": "idempotency_keys",
                "ordering": ["-created_at"],
                "indexes": [
                    models.Index(fields=["tenant"], name="idx_idempotency_tenant_id"),
                    models.Index(fields=["tenant", "-created_at"], name="idx_idempotency_tenant_created"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("tenant", "principal", "key"), name="idempotency_keys_principal_key_uniq"
                    )
                ],
            },
            managers=[("all_tenants", django.db.models.manager.Manager())],
        ),
        AddForeignKeyOffCitus(**TENANT_KEY),
        EnableTenantRLS("idempotency_keys", current_tenant=CURRENT_TENANT),
        GrantTenantTablePrivileges("idempotency_keys"),
        DropForeignKeyOnCitus(**TENANT_KEY),
        DistributeTenantTable("idempotency_keys", colocate_with="users"),
        AddForeignKeyOnCitus(**TENANT_KEY),
    ]
