"""Natural keys for the background jobs (docs/jobs.md): one portfolio snapshot
per (tenant, user, taken_at) and one risk metric per (tenant, user, metric,
window_days, as_of), so a redelivered or repeated job writes nothing twice.

Both lead with tenant_id (a unique key on a Citus distributed table must hold
the distribution column) and are built CONCURRENTLY, so writers are not
blocked while the index builds. A database that already holds two rows
with one key stops here with a unique violation, and nothing is changed
(docs/jobs.md shows the query that lists them).
"""

from django.db import migrations

from tenants.operations import AddUniqueConstraintConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("trading", "0006_default_manager_all_tenants"),
    ]

    operations = [
        AddUniqueConstraintConcurrently(
            "portfoliosnapshot",
            "portfolio_snapshots",
            "portfolio_snapshots_natural_key",
            columns=["tenant_id", "user_id", "taken_at"],
            fields=["tenant", "user", "taken_at"],
        ),
        AddUniqueConstraintConcurrently(
            "riskmetric",
            "risk_metrics",
            "risk_metrics_natural_key",
            columns=["tenant_id", "user_id", "metric", "window_days", "as_of"],
            fields=["tenant", "user", "metric", "window_days", "as_of"],
        ),
    ]
