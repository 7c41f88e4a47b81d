"""Every node of this database: the one server, or a Citus coordinator and its workers.

A catalog check that reads only the coordinator misses what was changed on a
worker directly (an ALTER POLICY on one shard, a grant Citus never
propagates: issue 20). `each_node()` yields a connection per node, as the
owner role, to the same database name: the alias's own connection first
(labelled "coordinator" on Citus, "server" otherwise), then one fresh psycopg
connection per active primary worker of pg_dist_node, closed afterwards.

Fails loudly: a worker that cannot be reached raises (psycopg.OperationalError);
a check is never "clean" because a node did not answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections

from tenants.catalog.servers import Server
from tenants.constants import OWNER_DATABASE

WORKERS_SQL = """
SELECT nodename, nodeport FROM pg_dist_node
WHERE noderole = 'primary' AND isactive AND groupid <> 0 ORDER BY nodeport
"""


def has_citus(connection: Any) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
        return bool(cursor.fetchone()[0])


def worker_addresses(alias: str = OWNER_DATABASE) -> list[tuple[str, int]]:
    """(host, port) of every active primary worker; empty on a plain PostgreSQL."""
    connection = connections[alias]
    if not has_citus(connection):
        return []
    with connection.cursor() as cursor:
        cursor.execute(WORKERS_SQL)
        return [(host, int(port)) for host, port in cursor.fetchall()]


@contextmanager
def worker_connection(alias: str, host: str, port: int) -> Iterator[Any]:
    """The alias's role on one worker, same database, autocommit (catalog reads only)."""
    owner = Server.of(alias)
    dbname = str(connections[alias].settings_dict["NAME"])
    # The worker's address as the coordinator knows it; the alias's host is the
    # coordinator's, so only the port differs on a one-machine cluster.
    node = Server(host=host, port=str(port), user=owner.user, password=owner.password)
    connection = node.connect(dbname, autocommit=True, connect_timeout=10)
    # Citus hides shards from pg_class in client sessions; a check must see them.
    connection.execute("SET citus.override_table_visibility TO off")
    # Reading a policy's expression locks its table: never queue behind DDL for long.
    connection.execute("SET lock_timeout TO '2s'")
    try:
        yield connection
    finally:
        connection.close()


def each_node(alias: str = OWNER_DATABASE) -> Iterator[tuple[str, Any]]:
    """(label, connection) for every node of the alias's database."""
    workers = worker_addresses(alias)
    yield ("coordinator" if workers else "server"), connections[alias]
    for host, port in workers:
        with worker_connection(alias, host, port) as connection:
            yield f"worker {host}:{port}", connection
