"""tenants 0012 on a coordinator, both ways, with rows in the tables:
`migrate tenants 0011` gives local tables with their single-node keys back
(no row lost), `sqlmigrate tenants 0012` prints the Citus statements and runs
none, and `migrate` distributes again (rows copied into the shards)."""

from __future__ import annotations

import pytest

from tenants.catalog.backups import row_counts
from tests.support.citus_layout import layout_problems
from tests.support.scratch import FAST_HASHER, connect, manage, scratch_database

pytestmark = pytest.mark.slow

KEYS = (
    "SELECT conrelid::regclass::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE contype IN ('p', 'f') AND conrelid::regclass::text IN ('users', 'trades', 'django_admin_log') ORDER BY 1"
)


# The tables 0012 distributes. The later migrations' tables (the audit log, sessions, API
# keys) are dropped by `migrate tenants 0011` with their rows: that is their own reverse.
TABLES_OF_0012 = {
    "tenants",
    "users",
    "trades",
    "positions",
    "orders",
    "portfolio_snapshots",
    "risk_metrics",
    "agent_signals",
}


def state(dbname: str) -> tuple[list[str], list[str], list[str]]:
    with connect("owner", dbname) as owner, owner.cursor() as cursor:
        problems = layout_problems(cursor)
        keys = [row[0] for row in owner.execute(KEYS).fetchall()]
        counts = [line for line in row_counts(cursor) if line.split()[0] in TABLES_OF_0012]
        return problems, keys, counts


def test_citus_distribute_migration_reverses_and_reapplies_without_losing_rows():
    with scratch_database("alphapulse_reverse") as db:
        manage(db, "migrate")
        manage(db, "load_demo", "--trades", "30", **FAST_HASHER)
        problems, distributed_keys, counts = state(db)
        assert problems == []
        assert "trades PRIMARY KEY (tenant_id, id)" in distributed_keys

        manage(db, "migrate", "tenants", "0011")
        problems, local_keys, after_reverse = state(db)
        assert any("not distributed" in p for p in problems), problems
        assert "trades PRIMARY KEY (id)" in local_keys
        assert "users PRIMARY KEY (id)" in local_keys
        assert "django_admin_log FOREIGN KEY (user_id) REFERENCES users(id) DEFERRABLE INITIALLY DEFERRED" in local_keys
        assert "trades FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id)" in local_keys
        assert after_reverse == counts

        printed = manage(db, "sqlmigrate", "tenants", "0012").stdout
        assert "SELECT create_distributed_table('trades', 'tenant_id', colocate_with => 'users')" in printed
        assert "SELECT create_reference_table('tenants')" in printed
        assert state(db)[1] == local_keys, "sqlmigrate ran something"

        manage(db, "migrate")
        problems, keys, after_again = state(db)
        assert problems == []
        assert keys == distributed_keys
        assert after_again == counts
