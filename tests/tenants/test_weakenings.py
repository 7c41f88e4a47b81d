"""`rls_check` names every change that moves rows between tenants or widens what a session sees
(issue 20 item 4; tenants.catalog.weakenings and the schema rule of tenants.catalog.privileges).

Each case commits its weakening as the owner in one migrated scratch database, runs the real
`manage.py rls_check` there (exit 1, the weakening named), and takes it away again; the
database passes `rls_check` before and after each case. The leak itself is shown for the
database setting.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tenants.catalog.servers import Server
from tests.support.scratch import ON_CITUS, ROOT, connect, manage, scratch_database

pytestmark = [pytest.mark.slow, pytest.mark.citus]  # also on the cluster (make test-citus)

B = "00000000-0000-0000-0000-00000000000b"

TRIGGER = (
    """
    CREATE FUNCTION copy_to_b() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
    BEGIN
      IF NEW.tenant_id <> '00000000-0000-0000-0000-00000000000b' THEN
        INSERT INTO trades (id, tenant_id, user_id, symbol, side, quantity, price, created_at)
        VALUES (gen_random_uuid(), '00000000-0000-0000-0000-00000000000b', NEW.user_id, NEW.symbol,
                NEW.side, NEW.quantity, NEW.price, NEW.created_at);
      END IF;
      RETURN NEW;
    END $$;
    REVOKE EXECUTE ON FUNCTION copy_to_b() FROM PUBLIC;
    CREATE TRIGGER copy_trades_to_b AFTER INSERT ON trades FOR EACH ROW EXECUTE FUNCTION copy_to_b();
    """,
    "DROP TRIGGER copy_trades_to_b ON trades; DROP FUNCTION copy_to_b()",
    "trigger copy_trades_to_b on trades runs copy_to_b()",
)
RULE = (
    "CREATE RULE orders_to_b AS ON INSERT TO orders DO ALSO "
    "DELETE FROM trades WHERE tenant_id = NEW.tenant_id AND symbol = NEW.symbol",
    "DROP RULE orders_to_b ON orders",
    "rule orders_to_b on orders",
)
COLUMNAR_VIEW = (
    "CREATE SCHEMA columnar; CREATE VIEW columnar.all_trades AS SELECT * FROM trades; "
    "GRANT USAGE ON SCHEMA columnar TO PUBLIC; GRANT SELECT ON columnar.all_trades TO PUBLIC",
    "DROP SCHEMA columnar CASCADE",
    "SELECT on table columnar.all_trades",
)
DATABASE_SETTING = (
    "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET app.current_tenant_id = %L', "
    f"current_database(), '{B}'); END $$",
    "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET app.current_tenant_id', current_database()); END $$",
    f"SET app.current_tenant_id={B}",
    "superuser",
)


@pytest.fixture(scope="module")
def migrated(django_db_setup, django_db_blocker) -> Iterator[str]:
    with django_db_blocker.unblock(), scratch_database("alphapulse_weak") as name:
        manage(name, "migrate")
        assert manage(name, "rls_check", check=False).returncode == 0
        yield name


def owner_run(dbname: str, statements: str) -> None:
    with connect("owner", dbname) as owner:
        owner.execute(statements)


def superuser_run(dbname: str, statement: str) -> None:
    """As the server's superuser (a database-level setting of a custom variable needs one)."""
    port = Server.of("owner").port
    result = subprocess.run(
        ["bash", "scripts/citus.sh" if ON_CITUS else "scripts/db.sh", "psql", "-d", dbname, "-c", statement],
        cwd=ROOT,
        env={**os.environ, "PGPORT": port, "CITUS_PORT": port},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def rls_check_names(dbname: str, named: str) -> str:
    result = manage(dbname, "rls_check", check=False)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert named in result.stdout, result.stdout[-3000:]
    return result.stdout


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            TRIGGER,
            id="trigger",
            marks=pytest.mark.skipif(ON_CITUS, reason="Citus refuses triggers on distributed tables"),
        ),
        pytest.param(RULE, id="rule"),
        pytest.param(
            COLUMNAR_VIEW,
            id="columnar-schema",
            marks=pytest.mark.skipif(ON_CITUS, reason="on Citus `columnar` is the extension's own schema"),
        ),
        pytest.param(DATABASE_SETTING, id="database-setting"),
    ],
)
def test_rls_check_names_the_weakening(migrated, case):
    create, drop, named, *who = case
    run = superuser_run if who else owner_run
    run(migrated, create)
    try:
        rls_check_names(migrated, named)
    finally:
        run(migrated, drop)
    assert manage(migrated, "rls_check", check=False).returncode == 0


def test_the_database_setting_really_leaks_to_a_session_with_no_tenant(migrated):
    """What the check guards against: a fresh app-role session starts as tenant B."""
    create, drop, *_ = DATABASE_SETTING
    superuser_run(migrated, create)
    try:
        with connect("default", migrated) as app:
            assert app.execute("SELECT current_setting('app.current_tenant_id', true)").fetchone() == (B,)
    finally:
        superuser_run(migrated, drop)


@pytest.mark.skipif(not ON_CITUS, reason="shards live on Citus workers (make test-citus)")
def test_a_policy_altered_on_one_shard_on_a_worker_is_named(migrated):
    """Issue 20: ALTER POLICY on one shard, directly on a worker; the coordinator still looked right."""
    with connect("owner", migrated) as owner:
        shard, port = owner.execute(
            "SELECT shard_name(s.logicalrelid, s.shardid), n.nodeport FROM pg_dist_shard s "
            "JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid) "
            "WHERE s.logicalrelid = 'trades'::regclass AND n.groupid <> 0 ORDER BY s.shardid LIMIT 1"
        ).fetchone()
    owner_role = Server.of("owner")
    statement = sql.SQL("ALTER POLICY tenant_isolation_policy ON {} USING ({})")
    with psycopg.connect(
        host=owner_role.host,
        port=port,
        user=owner_role.user,
        password=owner_role.password,
        dbname=migrated,
        autocommit=True,
    ) as worker:
        worker.execute("SET citus.enable_ddl_propagation TO off")
        worker.execute(statement.format(sql.Identifier(shard), sql.SQL("true")))
        try:
            out = rls_check_names(migrated, f"shard {shard} of trades on worker 127.0.0.1:{port}")
            assert "policy tenant_isolation_policy" in out
        finally:
            original = "tenant_id = (NULLIF(current_setting('app.current_tenant_id', true), ''))::uuid"
            worker.execute(statement.format(sql.Identifier(shard), sql.SQL(original)))
    assert manage(migrated, "rls_check", check=False).returncode == 0
