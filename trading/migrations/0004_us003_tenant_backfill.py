"""US-003 step 3: each row takes its user's tenant, in committed batches by primary key.

Needs US-002 done (users.tenant_id filled). Safe to re-run after an interruption.
Batch size: TENANT_BACKFILL_BATCH_SIZE (default 5000; a few thousand rows keep
writer stalls short: docs/design.md, "Zero-downtime DDL").
"""

from django.db import migrations

from tenants.operations import BackfillTenant


class Migration(migrations.Migration):
    atomic = False
    dependencies = [
        ("trading", "0003_us003_tenant_indexes"),
        ("tenants", "0007_us002_users_tenant_not_null"),
    ]

    operations = [
        BackfillTenant("trades", from_users=True),
        BackfillTenant("positions", from_users=True),
        BackfillTenant("orders", from_users=True),
        BackfillTenant("portfolio_snapshots", from_users=True),
        BackfillTenant("risk_metrics", from_users=True),
        BackfillTenant("agent_signals", from_users=True),
    ]
