"""US-003 step 2: the tenant indexes, CONCURRENTLY. (tenant_id, created_at DESC)
serves the newest-first lists and every tenant_id = lookup."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("trading", "0002_us003_tenant_columns")]

    operations = [
        AddIndexConcurrently("trade", models.Index(fields=["tenant"], name="idx_trades_tenant_id")),
        AddIndexConcurrently(
            "trade",
            models.Index(fields=["tenant", "-created_at"], name="idx_trades_tenant_created"),
        ),
        AddIndexConcurrently("position", models.Index(fields=["tenant"], name="idx_positions_tenant_id")),
        AddIndexConcurrently(
            "position",
            models.Index(fields=["tenant", "-created_at"], name="idx_positions_tenant_created"),
        ),
        AddIndexConcurrently("order", models.Index(fields=["tenant"], name="idx_orders_tenant_id")),
        AddIndexConcurrently(
            "order",
            models.Index(fields=["tenant", "-created_at"], name="idx_orders_tenant_created"),
        ),
        AddIndexConcurrently(
            "portfoliosnapshot",
            models.Index(fields=["tenant"], name="idx_snapshots_tenant_id"),
        ),
        AddIndexConcurrently(
            "portfoliosnapshot",
            models.Index(fields=["tenant", "-created_at"], name="idx_snapshots_tenant_created"),
        ),
        AddIndexConcurrently("riskmetric", models.Index(fields=["tenant"], name="idx_risk_tenant_id")),
        AddIndexConcurrently(
            "riskmetric",
            models.Index(fields=["tenant", "-created_at"], name="idx_risk_tenant_created"),
        ),
        AddIndexConcurrently("agentsignal", models.Index(fields=["tenant"], name="idx_signals_tenant_id")),
        AddIndexConcurrently(
            "agentsignal",
            models.Index(fields=["tenant", "-created_at"], name="idx_signals_tenant_created"),
        ),
    ]
