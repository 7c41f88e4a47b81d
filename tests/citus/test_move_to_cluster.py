"""An existing single-node database moved onto the cluster, the documented way
(docs/scaling.md, "Moving an existing database onto a cluster"):

1. a plain PostgreSQL database (here: one without the citus extension, on
   the coordinator's server), migrated and loaded like `make setup` does;
2. `backup_database` (pg_dump with RLS forced, counts in the same snapshot);
3. `scripts/citus.sh createdb` (every node, citus, workers registered), then
   `restore_database --into-empty` (the counts are checked);
4. `citus_distribute`: the dump carries no distribution, and every migration
   is recorded as applied, so `migrate` alone would leave the tables local.
Then the layout is the one `migrate` builds on a fresh cluster, every row of
every tenant is there, and the app role sees its tenant's rows, routed.
"""

from __future__ import annotations

import uuid

import pytest
from psycopg import sql

from tenants.catalog.backups import row_counts
from tenants.constants import APP_ROLE
from tests.support.citus_layout import layout_problems
from tests.support.scratch import FAST_HASHER, connect, manage, scratch_database

pytestmark = pytest.mark.slow


@pytest.fixture
def single_node_database():
    """A database without citus, so `migrate` builds the single-node layout."""
    name = f"alphapulse_single_{uuid.uuid4().hex[:8]}"
    with connect("owner", "postgres") as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        manage(name, "migrate")
        manage(name, "load_demo", "--trades", "40", **FAST_HASHER)
        yield name
    finally:
        with connect("owner", "postgres") as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def counts(dbname: str) -> list[str]:
    with connect("owner", dbname) as owner, owner.cursor() as cursor:
        return row_counts(cursor)


def test_single_node_dump_restored_into_the_coordinator_and_distributed(single_node_database, tmp_path):
    with connect("owner", single_node_database) as plain:
        assert plain.execute("SELECT count(*) FROM pg_extension WHERE extname = 'citus'").fetchone() == (0,)
    before = counts(single_node_database)
    assert any(line.startswith("trades ") for line in before)
    dump = tmp_path / "single.dump"
    manage(single_node_database, "backup_database", "--file", str(dump))

    with scratch_database("alphapulse_moved") as moved:  # on every node, citus in each
        manage(moved, "restore_database", str(dump), "--db-name", moved, "--into-empty")
        refused = manage(moved, "migrate", "--check", check=False)
        assert refused.returncode == 0, "every migration is recorded as applied: migrate has nothing to do"
        with connect("owner", moved) as owner, owner.cursor() as cursor:
            assert layout_problems(cursor), "restored tables are still coordinator-local, not distributed"

        dry = manage(moved, "citus_distribute", "--dry-run").stdout
        assert "SELECT create_distributed_table('trades', 'tenant_id', colocate_with => 'users')" in dry
        with connect("owner", moved) as owner, owner.cursor() as cursor:
            assert layout_problems(cursor), "--dry-run ran something"

        distributed = manage(moved, "citus_distribute")
        assert "row counts per table and tenant match" in distributed.stdout

        with connect("owner", moved) as owner, owner.cursor() as cursor:
            assert layout_problems(cursor) == []
            owner.execute("SET citus.multi_task_query_log_level TO 'error'")  # only for the lines below
        assert counts(moved) == before
        again = manage(moved, "citus_distribute")
        assert "nothing to do" in again.stdout

        # The app role, in one tenant's transaction, sees exactly that tenant's trades, on one shard.
        with connect("owner", moved) as owner:
            tenant_id, expected = owner.execute(
                "SELECT t.id, count(x.*) FROM tenants t JOIN trades x ON x.tenant_id = t.id "
                "WHERE t.slug = 'acme' GROUP BY t.id"
            ).fetchone()
        with connect("default", moved) as app:
            assert app.info.user == APP_ROLE
            with app.transaction():
                app.execute(sql.SQL("SET LOCAL app.current_tenant_id = {}").format(sql.Literal(str(tenant_id))))
                app.execute("SET LOCAL citus.multi_task_query_log_level TO 'error'")
                seen = app.execute("SELECT count(*) FROM trades WHERE tenant_id = %s", [tenant_id]).fetchone()
                plan = app.execute("EXPLAIN SELECT count(*) FROM trades WHERE tenant_id = %s", [tenant_id]).fetchall()
        assert seen == (expected,)
        assert any("Task Count: 1" in line for (line,) in plan)
