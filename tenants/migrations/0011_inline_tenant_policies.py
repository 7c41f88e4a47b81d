"""The tenant policies compare against the inline expression, on every backend.

US-004 wrote them around a scalar sub-select, `(SELECT NULLIF(...)::uuid)`;
Citus refuses sub-selects in the policies of distributed tables, and on 1M
rows the inline form measured the same for lists, details and inserts
(docs/scaling.md, "Policy shape: measured"). Both shapes are frozen here as
written. Each table is rewritten in its own short transaction (never seen
without its policies); `migrate tenants 0009` puts the sub-select back.
"""

from django.db import migrations

from tenants.catalog.distribution_operations import ReshapeTenantPolicies

SUBSELECT = "(SELECT NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)"
INLINE = "NULLIF(current_setting('app.current_tenant_id', true), '')::uuid"
TABLES = ("users", "trades", "positions", "orders", "portfolio_snapshots", "risk_metrics", "agent_signals")


class Migration(migrations.Migration):
    atomic = False  # one transaction per table (ReshapeTenantPolicies)
    dependencies = [
        ("tenants", "0010_app_role_least_privilege"),
        ("trading", "0006_default_manager_all_tenants"),
    ]

    operations = [ReshapeTenantPolicies(table, old=SUBSELECT, new=INLINE) for table in TABLES]
