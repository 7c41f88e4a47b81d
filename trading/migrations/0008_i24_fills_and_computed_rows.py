"""The ledger's columns (issue 24): fills link trades to orders, and job rows are marked computed.

- orders.filled_quantity (numeric, database default 0: an instant column on
  PostgreSQL 11+) and a CHECK 0 <= filled_quantity <= quantity, added NOT
  VALID and validated after (no long lock);
- orders(tenant_id, id) unique, built CONCURRENTLY: the target of
- trades.order_id (nullable) with the composite key (tenant_id, order_id) ->
  orders(tenant_id, id), NOT VALID then validated (a plain order_id key would
  be checked past RLS, as for users; on a Citus coordinator added between the
  colocated shards instead), and a partial index on
  (tenant_id, order_id) built CONCURRENTLY;
- portfolio_snapshots.computed and risk_metrics.computed (database default
  false): the jobs' rows are true; a row typed in through the API is false.
Reverse: each step undone in reverse order (the columns and their data go).
"""

from typing import Any

import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

from tenants.catalog.distribution_operations import AddForeignKeyOnCitus, DropForeignKeyBeforeDistributing, OffCitus
from tenants.operations import AddUniqueConstraintConcurrently, LockSafeRunSQL

ORDER_KEY: dict[str, Any] = dict(
    table="trades",
    name="fk_trades_tenant_order",
    columns=["tenant_id", "order_id"],
    references="orders",
    referenced_columns=["tenant_id", "id"],
)

FILLED_WITHIN = models.CheckConstraint(
    condition=models.Q(("filled_quantity__gte", 0), ("filled_quantity__lte", models.F("quantity"))),
    name="orders_filled_quantity_within_quantity",
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("trading", "0007_snapshot_natural_key"),
        ("tenants", "0016_i24_idempotency_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="filled_quantity",
            field=models.DecimalField(db_default=0, decimal_places=8, default=0, editable=False, max_digits=20),
        ),
        LockSafeRunSQL(
            "ALTER TABLE orders ADD CONSTRAINT orders_filled_quantity_within_quantity "
            "CHECK (filled_quantity >= 0 AND filled_quantity <= quantity) NOT VALID",
            "ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_filled_quantity_within_quantity",
            state_operations=[migrations.AddConstraint(model_name="order", constraint=FILLED_WITHIN)],
        ),
        LockSafeRunSQL(
            "ALTER TABLE orders VALIDATE CONSTRAINT orders_filled_quantity_within_quantity",
            "SELECT 1",
        ),
        AddUniqueConstraintConcurrently(
            "order", "orders", "orders_tenant_id_id_uniq", columns=["tenant_id", "id"], fields=["tenant", "id"]
        ),
        migrations.AddField(
            model_name="trade",
            name="order",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="trading.order",
            ),
        ),
        AddIndexConcurrently(
            model_name="trade",
            index=models.Index(
                condition=models.Q(("order__isnull", False)),
                fields=["tenant", "order"],
                name="idx_trades_tenant_order",
            ),
        ),
        OffCitus(
            LockSafeRunSQL(
                "ALTER TABLE trades ADD CONSTRAINT fk_trades_tenant_order FOREIGN KEY (tenant_id, order_id) "
                "REFERENCES orders (tenant_id, id) NOT VALID",
                "ALTER TABLE trades DROP CONSTRAINT IF EXISTS fk_trades_tenant_order",
            )
        ),
        OffCitus(LockSafeRunSQL("ALTER TABLE trades VALIDATE CONSTRAINT fk_trades_tenant_order", "SELECT 1")),
        # On a coordinator: a database moved onto the cluster arrives with the key (citus_distribute
        # takes it off before distributing anything); then it goes on between the colocated shards.
        DropForeignKeyBeforeDistributing(**ORDER_KEY),
        AddForeignKeyOnCitus(**ORDER_KEY),
        migrations.AddField(
            model_name="portfoliosnapshot",
            name="computed",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.AddField(
            model_name="riskmetric",
            name="computed",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
    ]
