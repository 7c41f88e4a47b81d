"""Positions become the sum of their trades (issue 24): today's positions recomputed from today's trades.

One tenant per transaction (committed batches, like the seed's backfills: a
writer waits at most for one tenant's positions), as that tenant (SET LOCAL
app.current_tenant_id, so forced RLS lets the owner see its rows):
- every (user, symbol) with trades gets the position its trades sum to
  (trading.ledger: weighted average cost, in booking order);
- a position no trade explains (typed in by hand) is deleted;
- each change is kept in the tenant's audit log as `position.rebuilt`, with
  `before` and `after` (null when deleted): the tenant's admin reads them at
  GET /api/audit-events/?action=position.rebuilt, and the migration prints a
  count per tenant;
- orders already `filled` get filled_quantity = quantity (they were filled by hand).
Safe to re-run (a second run finds no difference). Reverse: nothing to undo
(the figures before are in the audit log).
"""

from django.db import migrations, transaction
from django.db.migrations.operations.base import Operation

from tenants.catalog.ddl import comment
from tenants.database.tenant_setting import set_tenant_sql
from trading import rebuild

FILLED_ORDERS = (
    "UPDATE orders SET filled_quantity = quantity "
    "WHERE tenant_id = %s AND status = 'filled' AND filled_quantity <> quantity"
)


class PositionsFromTrades(Operation):
    """Each tenant's positions rewritten from its trades, one tenant per transaction (see above)."""

    reversible = True
    reduces_to_sql = True

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.collect_sql:
            comment(
                schema_editor,
                "migrate runs, for each tenant in its own transaction (SET LOCAL app.current_tenant_id): "
                "read its trades in booking order, fold them into positions (trading.ledger), upsert each "
                "position that differs, delete each one no trade explains, record each change as a "
                "position.rebuilt audit event, then: " + FILLED_ORDERS.replace("%s", "<tenant>"),
            )
            return
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, slug FROM tenants ORDER BY slug")
            tenants = cursor.fetchall()
        for tenant_id, slug in tenants:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute(set_tenant_sql(tenant_id))
                found = rebuild.differences(cursor, tenant_id)
                rebuild.apply(cursor, tenant_id, found, actor="system")
                cursor.execute(FILLED_ORDERS, [tenant_id])
            if found:
                print(f"\n  {slug}: {len(found)} positions rewritten from trades (audit log: position.rebuilt)")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        comment(schema_editor, "nothing to undo: the figures before are in the audit log (position.rebuilt)")

    def describe(self):
        return "Rewrite every tenant's positions from its trades, one tenant per transaction"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("trading", "0008_i24_fills_and_computed_rows")]

    operations = [PositionsFromTrades()]
