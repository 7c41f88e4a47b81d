"""US-004: row-level security, enabled and forced, on all seven tenant tables.

Deploy the tenant-setting code before this runs: old code would see 0 rows
(docs/design.md, "Rollout order"). Roll back with `manage.py migrate tenants 0007` (scenario 2).
The temporary tenant_id defaults go first: from here every insert names its
tenant, and one that does not fails instead of landing in the default tenant.
"""

from django.db import migrations

from tenants.operations import DropTenantDefault, EnableTenantRLS

# The policy shape this migration was applied with (a scalar sub-select),
# frozen here so its meaning never follows a later default; 0010 replaces it.
US004_CURRENT_TENANT = "(SELECT NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)"
# Frozen here: this migration must do the same thing forever, whatever tables
# later migrations add (those enable RLS on their own tables).
TABLES = ("users", "trades", "positions", "orders", "portfolio_snapshots", "risk_metrics", "agent_signals")


class Migration(migrations.Migration):
    atomic = False
    dependencies = [
        ("tenants", "0007_us002_users_tenant_not_null"),
        ("trading", "0005_us003_tenant_not_null"),
    ]

    operations = [
        *(DropTenantDefault(table) for table in TABLES),
        EnableTenantRLS("users", current_tenant=US004_CURRENT_TENANT),
        EnableTenantRLS("trades", current_tenant=US004_CURRENT_TENANT),
        EnableTenantRLS("positions", current_tenant=US004_CURRENT_TENANT),
        EnableTenantRLS("orders", current_tenant=US004_CURRENT_TENANT),
        EnableTenantRLS("portfolio_snapshots", current_tenant=US004_CURRENT_TENANT),
        EnableTenantRLS("risk_metrics", current_tenant=US004_CURRENT_TENANT),
        EnableTenantRLS("agent_signals", current_tenant=US004_CURRENT_TENANT),
    ]
