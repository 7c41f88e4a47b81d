"""The tenant's own audit log, `audit_events`: a tenant table like the others, append-only.

- tenant_id NOT NULL referencing tenants(id) ON DELETE CASCADE, its indexes;
- forced RLS and the tenant policies (EnableTenantRLS, one line as for the
  seven tables of us004);
- the app role may only SELECT and INSERT: no request path can change or
  delete an event (tests/tenants/test_tenant_audit.py tries);
- on a Citus coordinator: distributed by tenant_id, colocated with users, its
  primary key (tenant_id, id), the key to `tenants` added once distributed
  (the 0012 order). On PostgreSQL the key is added at once.
Reverse (`migrate tenants 0013`): the table and its events go.
"""

import uuid

import django.core.serializers.json
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
    table="audit_events",
    name="fk_audit_events_tenant",
    columns=["tenant_id"],
    references="tenants",
    referenced_columns=["id"],
    on_delete_cascade=True,
)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0013_i22_user_roles")]

    operations = [
        migrations.CreateModel(
            name="TenantAuditEvent",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("action", models.CharField(max_length=64)),
                ("actor", models.CharField(max_length=128)),
                ("target_type", models.CharField(blank=True, default="", max_length=64)),
                ("target_id", models.CharField(blank=True, default="", max_length=64)),
                (
                    "details",
                    models.JSONField(blank=True, default=dict, encoder=django.core.serializers.json.DjangoJSONEncoder),
                ),
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
                "verbose_name": "tenant audit event",
                "db_table": "audit_events",
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(fields=["tenant"], name="idx_audit_tenant_id"),
                    models.Index(fields=["tenant", "-created_at"], name="idx_audit_tenant_created"),
                ],
            },
            managers=[("all_tenants", django.db.models.manager.Manager())],
        ),
        AddForeignKeyOffCitus(**TENANT_KEY),
        EnableTenantRLS("audit_events", current_tenant=CURRENT_TENANT),
        GrantTenantTablePrivileges("audit_events", append_only=True),
        # On a coordinator (no-ops elsewhere): distributed and colocated like the other tenant tables.
        DropForeignKeyOnCitus(**TENANT_KEY),
        DistributeTenantTable("audit_events", colocate_with="users"),
        AddForeignKeyOnCitus(**TENANT_KEY),
    ]
