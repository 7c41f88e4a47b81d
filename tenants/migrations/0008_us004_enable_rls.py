"""US-004: row-level security, enabled and forced, on all seven tenant tables.

Deploy the tenant-setting code before this runs: old code would see 0 rows
(docs/design.md, "Rollout order"). Roll back with `manage.py migrate tenants 0007` (scenario 2).
The temporary tenant_id defaults go first: from here every insert names its
tenant, and one that does not fails instead of landing in the default tenant.
"""

from django.db import migrations

from tenants.operations import DropTenantDefault, EnableTenantRLS

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
        EnableTenantRLS("users"),
        EnableTenantRLS("trades"),
        EnableTenantRLS("positions"),
        EnableTenantRLS("orders"),
        EnableTenantRLS("portfolio_snapshots"),
        EnableTenantRLS("risk_metrics"),
        EnableTenantRLS("agent_signals"),
    ]
