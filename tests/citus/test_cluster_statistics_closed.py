"""On the cluster, the app role reads no other session's statements and runs no SQL on other nodes.

Citus grants PUBLIC its cluster-wide statistics (citus_stat_activity and the views built on it,
citus_stat_statements, citus_query_stats(), whose partition_key column is the tenant id of each
router query) and the run_command_on_* functions. Every tenant shares the app role, so what the
role may read of "its own" sessions is every tenant's. scripts/citus.sh (close_cluster_statistics)
takes them from PUBLIC on every node and database and leaves them to the owner; on plain
PostgreSQL, pg_stat_activity and pg_stat_statements are closed the same way
(tests/tenants/test_privileges.py).
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, connections
from django.db.utils import ProgrammingError
from psycopg import errors

from tenants.catalog.nodes import worker_addresses
from tenants.catalog.privileges import privilege_problems_on_every_node
from tenants.catalog.servers import Server
from tenants.context import tenant_context
from tests.support.scratch import citus_sh

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

# What the app role must not run; each reads other sessions or reaches other nodes.
CLOSED_TO_THE_APP_ROLE = [
    "SELECT query FROM citus_stat_activity",
    "SELECT query FROM citus_dist_stat_activity",
    "SELECT query FROM citus_stat_statements",
    "SELECT partition_key FROM citus_query_stats()",
    "SELECT * FROM citus_lock_waits",
    "SELECT result FROM run_command_on_workers('SELECT 1')",
    "SELECT result FROM run_command_on_all_nodes('SELECT 1')",
    "SELECT result FROM run_command_on_coordinator('SELECT 1')",
    "SELECT result FROM run_command_on_shards('trades', 'SELECT 1')",
    "SELECT result FROM run_command_on_placements('trades', 'SELECT 1')",
    "SELECT result FROM run_command_on_colocated_placements('trades', 'users', 'SELECT 1')",
]


def new_session(alias: str):
    """A second connection of `alias` to the test database (its own transaction)."""
    session = connections.create_connection(alias)
    session.settings_dict["NAME"] = connection.settings_dict["NAME"]
    return session


@pytest.fixture
def app_session():
    session = new_session("default")
    yield session
    session.close()


@pytest.mark.parametrize("statement", CLOSED_TO_THE_APP_ROLE)
def test_the_app_role_is_refused(app_session, statement):
    with pytest.raises(ProgrammingError) as refused, app_session.cursor() as cursor:
        cursor.execute(statement)
    assert isinstance(refused.value.__cause__, errors.InsufficientPrivilege), refused.value


def test_another_tenants_session_is_invisible_to_the_app_role_and_visible_to_the_owner(user_b, app_session):
    """B's transaction holds its `SET LOCAL` (the tenant id in clear) while A's session looks."""
    with tenant_context(user_b.tenant):
        connection.cursor().execute("SELECT 1")  # the tenant transaction is open on the coordinator
        b_pid = connection.connection.info.backend_pid
        seen_by_app = []
        for statement in ("SELECT query FROM citus_stat_activity", "SELECT query FROM citus_dist_stat_activity"):
            try:
                with app_session.cursor() as cursor:
                    cursor.execute(statement)
                    seen_by_app += [row[0] for row in cursor.fetchall()]
            except ProgrammingError as exc:
                assert isinstance(exc.__cause__, errors.InsufficientPrivilege), exc
        owner = new_session("owner")
        try:
            with owner.cursor() as cursor:
                cursor.execute(
                    "SELECT pid, state FROM citus_stat_activity WHERE pid = %s AND is_worker_query IS FALSE", [b_pid]
                )
                seen_by_owner = cursor.fetchall()
        finally:
            owner.close()
    assert not [query for query in seen_by_app if query and str(user_b.tenant_id) in query]
    assert seen_by_app == []
    assert seen_by_owner == [(b_pid, "idle in transaction")], "operators lost citus_stat_activity"


# -- issue 20 item 1: the workers, and a worker added later ------------------------

WORKER_STATEMENTS = [
    "SELECT query FROM pg_stat_activity",
    "SELECT * FROM pg_stat_get_activity(NULL)",
    "SELECT query FROM pg_stat_statements",
    "SELECT * FROM pg_stat_statements_info",
]


def app_role_on_node(port: int) -> list[str]:
    """Each of WORKER_STATEMENTS run as the app role directly on a node: the error text, '' if it ran."""
    app = Server.of("default")
    outcomes = []
    with psycopg.connect(
        host=app.host, port=port, user=app.user, password=app.password, dbname=connection.settings_dict["NAME"]
    ) as node:
        node.autocommit = True
        for statement in WORKER_STATEMENTS:
            try:
                node.execute(statement).fetchall()
                outcomes.append("")
            except psycopg.errors.InsufficientPrivilege as exc:
                outcomes.append(str(exc))
    return outcomes


def test_the_app_role_reads_no_sessions_on_any_worker():
    ports = [port for _, port in worker_addresses("owner")]
    assert len(ports) >= 2
    for port in ports:
        assert all("permission denied" in outcome for outcome in app_role_on_node(port)), port


@pytest.mark.slow
def test_a_worker_added_later_is_closed_and_checked():
    """scripts/citus.sh add-worker closes the statistics there too, and the privilege check reads it."""
    port = int(Server.of("owner").port) + 7
    citus_sh("add-worker", str(port), connection.settings_dict["NAME"])
    try:
        assert port in [p for _, p in worker_addresses("owner")]
        assert all("permission denied" in outcome for outcome in app_role_on_node(port))
        problems = privilege_problems_on_every_node("owner")
        assert problems == [], "\n".join(problems)
    finally:
        citus_sh("remove-worker", str(port))
