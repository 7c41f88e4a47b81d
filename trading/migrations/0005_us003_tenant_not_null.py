"""US-003 step 4: tenant_id NOT NULL, the composite user keys, and positions unique
per (tenant, user, symbol)."""

from django.db import migrations

from tenants.operations import (
    AddUniqueConstraintConcurrently,
    LockSafeRunSQL,
    ReplaceUserForeignKey,
    SetTenantNotNull,
)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("trading", "0004_us003_tenant_backfill")]

    operations = [
        SetTenantNotNull("trades"),
        SetTenantNotNull("positions"),
        SetTenantNotNull("orders"),
        SetTenantNotNull("portfolio_snapshots"),
        SetTenantNotNull("risk_metrics"),
        SetTenantNotNull("agent_signals"),
        ReplaceUserForeignKey("trade", "trades"),
        ReplaceUserForeignKey("position", "positions"),
        ReplaceUserForeignKey("order", "orders"),
        ReplaceUserForeignKey("portfoliosnapshot", "portfolio_snapshots"),
        ReplaceUserForeignKey("riskmetric", "risk_metrics"),
        ReplaceUserForeignKey("agentsignal", "agent_signals"),
        AddUniqueConstraintConcurrently(
            "position",
            "positions",
            "positions_tenant_user_symbol_uniq",
            ["tenant_id", "user_id", "symbol"],
            ["tenant", "user", "symbol"],
        ),
        LockSafeRunSQL(
            "ALTER TABLE positions DROP CONSTRAINT IF EXISTS positions_user_symbol_uniq",
            "ALTER TABLE positions ADD CONSTRAINT positions_user_symbol_uniq UNIQUE (user_id, symbol)",
            state_operations=[migrations.RemoveConstraint("position", "positions_user_symbol_uniq")],
        ),
    ]
