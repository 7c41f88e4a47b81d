"""The seed's phases, replayed on a scratch database with real `manage.py migrate`.

Builds the legacy (pre-tenancy) schema, fills it like the old application
did, migrates forward through us001..us004, then rolls back one phase at a
time to legacy and forward again, checking at every step that no row was
lost. Runs in its own database (created by the owner role), so rolling back
RLS here never touches the database the other tests share.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from tenants.constants import DEFAULT_TENANT_ID, TENANT_SETTING
from tests.support.scratch import connect, scratch_database
from tests.support.scratch import manage as run_manage

LEGACY_ROWS = {
    "users": 3,
    "trades": 40,
    "orders": 10,
    "positions": 3,
    "portfolio_snapshots": 5,
    "risk_metrics": 5,
    "agent_signals": 8,
}
# The tables these migrations know: a literal, like the migrations' own lists.
TENANT_TABLES = tuple(LEGACY_ROWS)
DOMAIN_TABLES = tuple(t for t in TENANT_TABLES if t != "users")
_connect = connect


def manage(dbname: str, *args: str, check: bool = True):
    # Batches of 7: several batches even for a few rows.
    return run_manage(dbname, *args, check=check, TENANT_BACKFILL_BATCH_SIZE="7")


@pytest.fixture
def scratch_db():
    with scratch_database("alphapulse_migrations") as name:
        yield name


def load_legacy_rows(owner: psycopg.Connection) -> None:
    """What the old, tenant-unaware application wrote."""
    users = [uuid.uuid4() for _ in range(LEGACY_ROWS["users"])]
    for i, user in enumerate(users):
        owner.execute(
            "INSERT INTO users (id, password, username, email, is_active, is_staff, is_superuser, created_at) "
            "VALUES (%s, '', %s, '', true, false, false, now())",
            [user, f"legacy{i}"],
        )
    for n in range(LEGACY_ROWS["trades"]):
        owner.execute(
            "INSERT INTO trades (id, user_id, symbol, side, quantity, price, executed_at, created_at) "
            "VALUES (gen_random_uuid(), %s, 'AAPL', 'buy', 1, 100, now(), now())",
            [users[n % 3]],
        )
    for n in range(LEGACY_ROWS["orders"]):
        owner.execute(
            "INSERT INTO orders (id, user_id, symbol, side, order_type, quantity, limit_price, status, "
            "created_at, updated_at) VALUES (gen_random_uuid(), %s, 'MSFT', 'sell', 'market', 2, NULL, 'new',"
            " now(), now())",
            [users[n % 3]],
        )
    for user in users:
        owner.execute(
            "INSERT INTO positions (id, user_id, symbol, quantity, average_price, created_at, updated_at) "
            "VALUES (gen_random_uuid(), %s, 'AAPL', 10, 99, now(), now())",
            [user],
        )
    for n in range(LEGACY_ROWS["portfolio_snapshots"]):
        owner.execute(
            "INSERT INTO portfolio_snapshots (id, user_id, total_value, cash, positions_value, taken_at, "
            "created_at) VALUES (gen_random_uuid(), %s, 100, 40, 60, now(), now())",
            [users[n % 3]],
        )
    for n in range(LEGACY_ROWS["risk_metrics"]):
        owner.execute(
            "INSERT INTO risk_metrics (id, user_id, metric, value, window_days, as_of, created_at) "
            "VALUES (gen_random_uuid(), %s, 'sharpe', 1.2, 30, now(), now())",
            [users[n % 3]],
        )
    for n in range(LEGACY_ROWS["agent_signals"]):
        owner.execute(
            "INSERT INTO agent_signals (id, user_id, agent_name, symbol, signal, confidence, rationale, "
            "created_at) VALUES (gen_random_uuid(), %s, 'momentum', 'AAPL', 'buy', 0.5, '', now())",
            [users[n % 3]],
        )


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    return {
        t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
        for t in TENANT_TABLES
    }


def has_tenant_column(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = 'tenant_id')",
        [table],
    ).fetchone()[0]


def rls_forced(conn: psycopg.Connection) -> dict[str, bool]:
    rows = conn.execute(
        "SELECT relname, relrowsecurity AND relforcerowsecurity FROM pg_class "
        "WHERE relname = ANY(%s) AND relkind = 'r'",
        [list(TENANT_TABLES)],
    ).fetchall()
    return dict(rows)


@pytest.mark.slow
def test_seed_phases_forward_back_and_forward_with_no_row_lost(scratch_db):
    manage(scratch_db, "migrate", "tenants", "0001_legacy_users")
    manage(scratch_db, "migrate", "trading", "0001_legacy_domain")
    with _connect("owner", scratch_db) as owner:
        assert not has_tenant_column(owner, "trades")
        load_legacy_rows(owner)
        assert row_counts(owner) == LEGACY_ROWS

    forward = manage(scratch_db, "migrate")
    assert "backfill trades: done, 40 rows" in forward.stdout
    assert manage(scratch_db, "rls_check", check=False).returncode == 0
    assert manage(scratch_db, "tenant_integrity", check=False).returncode == 0

    with _connect("owner", scratch_db) as owner:
        # The owner holds rls_bypass_role: it sees every row, all on the default tenant.
        assert row_counts(owner) == LEGACY_ROWS
        for table in TENANT_TABLES:
            tenants = owner.execute(sql.SQL("SELECT DISTINCT tenant_id FROM {}").format(sql.Identifier(table)))
            assert tenants.fetchall() == [(DEFAULT_TENANT_ID,)], table
        assert all(rls_forced(owner).values())

    with _connect("default", scratch_db) as app:
        assert set(row_counts(app).values()) == {0}  # no tenant: nothing
        with app.transaction():
            app.execute("SELECT set_config(%s, %s, true)", [TENANT_SETTING, str(DEFAULT_TENANT_ID)])
            assert row_counts(app) == LEGACY_ROWS

    # Scenario 2: roll back RLS only; the schema and every row stay.
    manage(scratch_db, "migrate", "tenants", "0007_us002_users_tenant_not_null")
    with _connect("owner", scratch_db) as owner:
        assert not any(rls_forced(owner).values())
        assert row_counts(owner) == LEGACY_ROWS
    with _connect("default", scratch_db) as app:
        assert row_counts(app) == LEGACY_ROWS  # old code works again without a tenant

    # Then every earlier phase, back to the legacy schema.
    manage(scratch_db, "migrate", "trading", "0001_legacy_domain")  # us003
    with _connect("owner", scratch_db) as owner:
        assert not any(has_tenant_column(owner, t) for t in DOMAIN_TABLES)
        assert has_tenant_column(owner, "users")
        assert row_counts(owner) == LEGACY_ROWS
    manage(scratch_db, "migrate", "tenants", "0003_us001_default_tenant")  # us002
    manage(scratch_db, "migrate", "tenants", "0001_legacy_users")  # us001
    with _connect("owner", scratch_db) as owner:
        assert not has_tenant_column(owner, "users")
        assert owner.execute("SELECT to_regclass('tenants')").fetchone() == (None,)
        assert row_counts(owner) == LEGACY_ROWS

    # And forward again.
    manage(scratch_db, "migrate")
    assert manage(scratch_db, "rls_check", check=False).returncode == 0
    with _connect("owner", scratch_db) as owner:
        assert row_counts(owner) == LEGACY_ROWS


@pytest.mark.slow
def test_rolling_back_past_tenancy_refuses_while_other_tenants_have_rows(scratch_db):
    manage(scratch_db, "migrate")
    manage(scratch_db, "create_tenant", "acme", "--name", "Acme")
    manage(scratch_db, "create_tenant_user", "acme", "alice", "--password", "a-long-password")
    manage(scratch_db, "migrate", "tenants", "0007_us002_users_tenant_not_null")
    result = manage(scratch_db, "migrate", "tenants", "0003_us001_default_tenant", check=False)
    assert result.returncode != 0
    assert "rows belong to tenants other than the default one" in result.stderr
    with _connect("owner", scratch_db) as owner:
        assert owner.execute("SELECT count(*) FROM users WHERE username = 'alice'").fetchone() == (1,)


@pytest.mark.slow
def test_app_role_cannot_run_migrations(scratch_db):
    result = manage(scratch_db, "migrate", "--database", "default", check=False)
    assert result.returncode != 0
    assert "permission denied" in (result.stderr + result.stdout)
