"""Run in a real process (`manage.py shell`) on a migrated Citus database by
test_nested_context.py: what one tenant_context nested in another sees.

It makes two tenants whose shards sit on different workers (each with a user
and a few trades, committed), then prints one JSON line: for two scenarios,
the tenants seen inside the nested block and by the statement after it, where
"seen" is `SELECT tenant_id, count(*) FROM trades GROUP BY tenant_id` (sent to
every shard; only RLS picks the rows). `NESTED_PROBE_SKIP_RESTORE=1` takes out
tenants.context's restore-before-release, to show what Citus does without it.
"""

from __future__ import annotations

import json
import os
import uuid

from django.db import connection, connections

import tenants.context as context_module
from tenants.context import tenant_context
from tenants.database.bulk import bulk_insert
from tenants.models import Tenant, User
from trading.models import Trade

OWNER = "owner"
GROUPED = "SELECT tenant_id::text, count(*) FROM trades GROUP BY tenant_id ORDER BY 1"
WORKER_OF = (
    "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
    "WHERE p.shardid = get_shard_id_for_distribution_column('trades', %s)"
)


def seen() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(GROUPED)
        return [tenant for tenant, _ in cursor.fetchall()]


def worker_of(tenant_id: uuid.UUID) -> int:
    with connections[OWNER].cursor() as cursor:
        cursor.execute(WORKER_OF, [tenant_id])
        return cursor.fetchone()[0]


def tenant_with_trades(n: int) -> Tenant:
    tenant = Tenant.objects.using(OWNER).create(slug=f"nested-{uuid.uuid4().hex[:8]}", name="Nested probe")
    with tenant_context(tenant, using=OWNER):
        user = User(tenant=tenant, username="probe")
        user.set_unusable_password()
        user.save(using=OWNER)
        trades = [Trade(tenant=tenant, user=user, symbol="AAPL", side="buy", quantity=1, price=1) for _ in range(n)]
        bulk_insert(Trade.objects.using(OWNER), trades)
    return tenant


def two_tenants_on_two_workers() -> tuple[Tenant, Tenant]:
    first = tenant_with_trades(3)
    for _ in range(30):
        second = tenant_with_trades(4)
        if worker_of(second.pk) != worker_of(first.pk):
            return first, second
    raise SystemExit("no two tenants on different workers after 30 tries: is there more than one worker?")


def skip_the_restore() -> None:
    """tenant_context sets the tenant on entry, and when nested once more, for
    the outer tenant, just before its savepoint is released: drop that call.
    (On entry the ContextVar already holds the tenant being set; at the
    restore it still holds the inner one.)"""
    real = context_module.set_tenant_setting

    def without_restore(conn, tenant_id):
        if tenant_id != context_module.current_tenant_id():
            return
        real(conn, tenant_id)

    context_module.set_tenant_setting = without_restore  # type: ignore[assignment]


def main() -> None:
    outer, inner = two_tenants_on_two_workers()
    if os.environ.get("NESTED_PROBE_SKIP_RESTORE") == "1":
        skip_the_restore()
    result = {"outer": str(outer.pk), "inner": str(inner.pk)}
    # 1. The nested block sends one routed statement (a connection to the
    #    inner tenant's worker); the statement after it fans out, which opens
    #    a connection to the other worker.
    with tenant_context(outer):
        with tenant_context(inner):
            routed = [str(t) for t in Trade.objects.order_by().values_list("tenant_id", flat=True).distinct()]
        after = seen()
    result["routed_inside"] = {"inside": routed, "after": after}
    # 2. The nested block fans out itself.
    with tenant_context(outer):
        with tenant_context(inner):
            inside = seen()
        after = seen()
    result["fan_out_inside"] = {"inside": inside, "after": after}
    print(json.dumps(result))


main()
