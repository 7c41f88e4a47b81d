"""US-001: the default tenant, owner of every legacy row."""

from django.db import migrations

from tenants.constants import DEFAULT_TENANT_ID, DEFAULT_TENANT_SLUG

INSERT_DEFAULT_TENANT = (
    "INSERT INTO tenants (id, name, slug, subscription_tier, status, created_at, updated_at) "
    "VALUES (%s, 'Default Tenant', %s, 'pro', 'active', now(), now()) ON CONFLICT (id) DO NOTHING"
)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0002_us001_tenants")]

    operations = [
        migrations.RunSQL(
            sql=[(INSERT_DEFAULT_TENANT, [str(DEFAULT_TENANT_ID), DEFAULT_TENANT_SLUG])],
            reverse_sql=[("DELETE FROM tenants WHERE id = %s", [str(DEFAULT_TENANT_ID)])],
        ),
    ]
