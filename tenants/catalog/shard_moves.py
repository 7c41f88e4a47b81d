"""Online shard operations on a Citus cluster: rebalance after a worker joins,
isolate one tenant onto a shard of its own, move a tenant's shards to another
node.

They run as the cluster's superuser (CITUS_ADMIN_DATABASE_URL, on the owner's
database): a shard copy writes its rows with COPY, and PostgreSQL refuses COPY
into a table whose row-level security applies to the writer, which FORCE makes
true of the owner too. Only a superuser is exempt, so FORCE never has to be
lifted for a move.

Every copy uses shard_transfer_mode 'block_writes'. Citus's default
('auto', logical replication) and 'force_logical' cannot finish here: the
subscription Citus creates for the copy cannot write into tables under FORCE
ROW LEVEL SECURITY, so the move waits forever once the first write arrives
(docs/scaling.md). block_writes holds writes to the shards being copied for
the length of the copy (reads go on) and then lets them through; nothing is
lost or refused, a write just waits (docs/scaling.md has the measured stalls).
Those two modes are refused before anything touches the cluster.

A tenant's shards are named by one of its distributed tables: all of them are
colocated, and Citus moves and splits the colocated group together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import environ
import psycopg
from django.conf import settings

from tenants.catalog.servers import Server

SAFE_TRANSFER_MODE = "block_writes"
HANGING_TRANSFER_MODES = ("auto", "force_logical")
# Any distributed tenant table names the colocated shard group.
ANCHOR_TABLE = "users"  # the colocation anchor of tenants 0012


class ShardMoveRefused(ValueError):
    """The operation would hang, or the database is not a Citus coordinator."""


ADMIN_URL_VARIABLE = "CITUS_ADMIN_DATABASE_URL"


def admin_connection(owner_alias: str) -> psycopg.Connection:
    """The superuser of CITUS_ADMIN_DATABASE_URL on the database of `owner_alias`, autocommit
    (Citus runs moves in transactions of its own)."""
    url = environ.Env().str(ADMIN_URL_VARIABLE, default="")
    if not url:
        raise ShardMoveRefused(
            f"{ADMIN_URL_VARIABLE} is not set: shard moves run as the cluster's superuser "
            "(scripts/citus.sh up writes it into .env.citus; elsewhere set it for the maintenance session)."
        )
    config = environ.Env.db_url_config(url)
    admin = Server(str(config["HOST"]), str(config["PORT"]), str(config["USER"]), str(config["PASSWORD"]))
    return admin.connect(settings.DATABASES[owner_alias]["NAME"], autocommit=True)


def checked_transfer_mode(mode: str) -> str:
    if mode in HANGING_TRANSFER_MODES:
        raise ShardMoveRefused(
            f"shard_transfer_mode '{mode}' copies shards by logical replication, which cannot write into "
            "the FORCE ROW LEVEL SECURITY tables here: the move would hang at the first write. "
            f"Use '{SAFE_TRANSFER_MODE}' (writes to the moving shards wait for the copy, nothing is lost)."
        )
    if mode != SAFE_TRANSFER_MODE:
        raise ShardMoveRefused(f"unknown shard_transfer_mode '{mode}': use '{SAFE_TRANSFER_MODE}'.")
    return mode


@dataclass(frozen=True)
class Placement:
    shard_id: int
    host: str
    port: int

    def __str__(self) -> str:
        return f"shard {self.shard_id} on {self.host}:{self.port}"


def ensure_coordinator(cursor) -> None:
    cursor.execute(
        "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')"
        " AND EXISTS (SELECT FROM pg_catalog.pg_class WHERE relname = 'pg_dist_partition')"
    )
    if not cursor.fetchone()[0]:
        raise ShardMoveRefused("this database is not a Citus coordinator (no citus extension): nothing to move.")
    cursor.execute("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = %s::regclass", [ANCHOR_TABLE])
    if not cursor.fetchone()[0]:
        raise ShardMoveRefused(f"{ANCHOR_TABLE} is not distributed here: run migrate on the coordinator first.")


def planned_moves(cursor) -> int:
    cursor.execute("SELECT count(*) FROM get_rebalance_table_shards_plan()")
    return int(cursor.fetchone()[0])


def rebalance(cursor, mode: str = SAFE_TRANSFER_MODE) -> int:
    """Spread the shards over every worker; returns the number of shard moves made."""
    mode = checked_transfer_mode(mode)
    ensure_coordinator(cursor)
    moves = planned_moves(cursor)
    cursor.execute("SELECT rebalance_table_shards(shard_transfer_mode => %s::citus.shard_transfer_mode)", [mode])
    return moves


def tenant_placement(cursor, tenant_id: uuid.UUID) -> Placement:
    cursor.execute(
        "SELECT shardid, nodename, nodeport FROM citus_shards"
        " WHERE table_name = %s::regclass AND shardid = get_shard_id_for_distribution_column(%s, %s::uuid)",
        [ANCHOR_TABLE, ANCHOR_TABLE, str(tenant_id)],
    )
    shard_id, host, port = cursor.fetchone()
    return Placement(int(shard_id), host, int(port))


def tenants_sharing_shard(cursor, tenant_id: uuid.UUID) -> int:
    """How many other tenants hash into the tenant's shard (0: it has the shard to itself)."""
    cursor.execute(
        "SELECT count(*) FROM tenants WHERE id <> %s::uuid"
        " AND get_shard_id_for_distribution_column(%s, id) = get_shard_id_for_distribution_column(%s, %s::uuid)",
        [str(tenant_id), ANCHOR_TABLE, ANCHOR_TABLE, str(tenant_id)],
    )
    return int(cursor.fetchone()[0])


def isolate_tenant(cursor, tenant_id: uuid.UUID, mode: str = SAFE_TRANSFER_MODE) -> Placement:
    """Split the tenant's rows (every colocated table) into shards of their own; returns the new placement."""
    mode = checked_transfer_mode(mode)
    ensure_coordinator(cursor)
    cursor.execute(
        "SELECT isolate_tenant_to_new_shard(%s, %s::uuid, 'CASCADE',"
        " shard_transfer_mode => %s::citus.shard_transfer_mode)",
        [ANCHOR_TABLE, str(tenant_id), mode],
    )
    return tenant_placement(cursor, tenant_id)


def move_tenant(cursor, tenant_id: uuid.UUID, host: str, port: int, mode: str = SAFE_TRANSFER_MODE) -> Placement:
    """Move the tenant's shard group to host:port; returns the new placement (unchanged when already there)."""
    mode = checked_transfer_mode(mode)
    ensure_coordinator(cursor)
    source = tenant_placement(cursor, tenant_id)
    if (source.host, source.port) != (host, port):
        cursor.execute(
            "SELECT citus_move_shard_placement(%s, %s, %s, %s, %s,"
            " shard_transfer_mode => %s::citus.shard_transfer_mode)",
            [source.shard_id, source.host, source.port, host, port, mode],
        )
    return tenant_placement(cursor, tenant_id)
