"""Backups with RLS forced: a dump that holds every tenant's rows, and the proof.

Under FORCE ROW LEVEL SECURITY a plain pg_dump by the owner stops with "query
would be affected by row-level security policy", and a dump by a role the
policies filter would silently hold no rows. So:

- `backup()` dumps as the owner (who holds rls_bypass_role) with
  `--enable-row-security`, and counts the rows per table and tenant in the
  *same snapshot* as the dump (`pg_export_snapshot()` + `pg_dump --snapshot`):
  writes during the backup cannot make the counts and the dump disagree.
- `restore()` restores into a new database only (never over a live one) and
  compares its counts with the backup's; any difference is an error (exit 1),
  and a dump without its counts is refused unless explicitly allowed.
Connection settings come from the `owner` alias (MIGRATION_DATABASE_URL; real
environment variables win over .env), the database name may be overridden.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from tenants.catalog.servers import Server, ToolError
from tenants.constants import OWNER_DATABASE
from tenants.registry import tenant_tables

COLUMNS = "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public'"


class BackupError(ToolError):
    """A backup or restore that must not be trusted; the message says why."""


def row_counts(cursor: psycopg.Cursor) -> list[str]:
    """'table tenant_id rows' per tenant table and tenant, sorted.

    Works at every phase of the migration: before us002/us003 a table has no
    tenant_id and is counted whole (tenant '-'); a table not there yet is skipped.
    """
    cursor.execute(COLUMNS)
    columns = set(cursor.fetchall())
    lines = []
    for table in tenant_tables():
        if (table, "tenant_id") in columns:
            query = sql.SQL("SELECT tenant_id::text, count(*) FROM {} GROUP BY 1 ORDER BY 1")
        elif (table, "id") in columns:
            query = sql.SQL("SELECT '-', count(*) FROM {}")
        else:
            continue
        cursor.execute(query.format(sql.Identifier(table)))
        lines += [f"{table} {tenant_id} {rows}" for tenant_id, rows in cursor.fetchall()]
    return lines


def counts_file(dump: Path) -> Path:
    return dump.with_name(dump.name + ".counts")


def tables_with_data(server: Server, dump: Path) -> int:
    listing = server.run("pg_restore", "--list", str(dump)).stdout
    return sum(1 for line in listing.splitlines() if " TABLE DATA public " in line)


def backup(dbname: str, dump: Path) -> tuple[int, int]:
    """Dump `dbname` to `dump` and its counts beside it; returns (tables with data, table/tenant pairs)."""
    server = Server.of(OWNER_DATABASE)
    dump.parent.mkdir(parents=True, exist_ok=True)
    with server.connect(dbname) as conn:
        # One snapshot for the counts and the dump, held until pg_dump is done.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        with conn.cursor() as cursor:
            counts = row_counts(cursor)
        server.run(
            "pg_dump",
            "--enable-row-security",
            f"--snapshot={row[0]}",
            "--format=custom",
            f"--file={dump}",
            dbname,
        )
        conn.rollback()
    counts_file(dump).write_text("".join(f"{line}\n" for line in counts))
    return tables_with_data(server, dump), len(counts)


@contextmanager
def _restore_list(server: Server, dump: Path) -> Iterator[str]:
    # Extensions belong to the superuser and already exist in every new
    # database (template1 has pg_stat_statements): leave them out.
    listing = server.run("pg_restore", "--list", str(dump)).stdout
    kept = [line for line in listing.splitlines() if "EXTENSION" not in line]
    with tempfile.NamedTemporaryFile("w", suffix=".list") as handle:
        handle.write("\n".join(kept) + "\n")
        handle.flush()
        yield handle.name


def _require_empty(server: Server, dbname: str) -> None:
    try:
        conn = server.connect(dbname, autocommit=True)
    except psycopg.OperationalError as exc:
        raise BackupError(f"cannot connect to database {dbname} (--into-empty needs it created first): {exc}") from exc
    with conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    if row and row[0]:
        raise BackupError(f"database {dbname} already holds {row[0]} tables: --into-empty restores into an empty one")


def restore(dump: Path, dbname: str, *, unchecked: bool = False, into_empty: bool = False) -> list[str]:
    """Restore `dump` into the new database `dbname`; returns the count lines that differ (empty: all match).

    `into_empty`: `dbname` exists already and holds no table (a Citus database,
    which only the cluster's superuser can create on every node).
    """
    expected_file = counts_file(dump)
    if not dump.is_file():
        raise BackupError(f"no such file: {dump}")
    if not expected_file.is_file() and not unchecked:
        raise BackupError(
            f"{expected_file} is missing, so the restore could not be checked; "
            "restore anyway with --unchecked (make restore ... UNCHECKED=1)"
        )
    server = Server.of(OWNER_DATABASE)
    if into_empty:
        _require_empty(server, dbname)
    else:
        with server.connect("postgres", autocommit=True) as admin:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone():
                raise BackupError(f"database {dbname} already exists: restore only ever creates a new one")
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(server.user))
            )
    with server.connect("postgres", autocommit=True) as admin:
        # A dump holds no database-level ACL: take TEMP from PUBLIC again, as
        # migration tenants.0010 did on the original (tenants.catalog.privileges).
        admin.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(dbname)))
    with _restore_list(server, dump) as use_list:
        server.run(
            "pg_restore",
            "--enable-row-security",
            "--no-owner",
            f"--role={server.user}",
            "--exit-on-error",
            f"--use-list={use_list}",
            f"--dbname={dbname}",
            str(dump),
        )
    if not expected_file.is_file():
        return []
    with server.connect(dbname) as conn, conn.cursor() as cursor:
        restored = row_counts(cursor)
    expected = expected_file.read_text().splitlines()
    return [f"- {line}" for line in expected if line not in restored] + [
        f"+ {line}" for line in restored if line not in expected
    ]
