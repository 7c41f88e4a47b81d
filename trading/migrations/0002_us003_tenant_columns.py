"""US-003 step 1: tenant_id on the six domain tables, nullable, default tenant as a
temporary default, foreign key NOT VALID. Metadata-only: no table rewrite."""

from django.db import migrations

from tenants.operations import AddTenantColumn


class Migration(migrations.Migration):
    atomic = False
    dependencies = [
        ("trading", "0001_legacy_domain"),
        ("tenants", "0003_us001_default_tenant"),
    ]

    operations = [
        AddTenantColumn("trade", "trades"),
        AddTenantColumn("position", "positions"),
        AddTenantColumn("order", "orders"),
        AddTenantColumn("portfoliosnapshot", "portfolio_snapshots"),
        AddTenantColumn("riskmetric", "risk_metrics"),
        AddTenantColumn("agentsignal", "agent_signals"),
    ]
