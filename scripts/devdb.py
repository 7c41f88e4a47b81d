"""Throw-away databases on the local cluster, for the tests and the benchmarks alike.

One way to create and drop such a database, to point `manage.py` at one, to find a free
loopback port, and to refuse a database that may hold someone's data. Each caller brings
its own connections and URLs (the tests read them from Django's settings, the benchmarks
from the environment and `.env`) and turns a failure into its own kind of error.
Imported as `scripts.devdb` by the tests and as `devdb` by the benchmarks
(`PYTHONPATH=scripts`); it imports neither Django nor the project.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
# Databases no tool here may create, drop or fill.
PROTECTED = frozenset({"alphapulse", "postgres", "template0", "template1"})


def create_database(admin: psycopg.Connection, name: str, *, template: str | None = None) -> None:
    """CREATE DATABASE `name` (a copy of `template` when given) on an autocommit connection."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
    admin.execute(statement)


def drop_database(admin: psycopg.Connection, name: str) -> None:
    """DROP DATABASE IF EXISTS `name`, closing its sessions, on an autocommit connection.

    WITH (FORCE) run by a role that is not a superuser refuses while an autovacuum worker
    is in the database (PostgreSQL 15 counts it as another role's session): it is gone
    in a moment, so the drop is tried again for a few seconds.
    """
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    for attempt in range(20):
        try:
            admin.execute(statement)
            return
        except psycopg.errors.InsufficientPrivilege:
            if attempt == 19:
                raise
            time.sleep(0.5)


def holds_real_tenants(conn: psycopg.Connection) -> bool:
    """A database (this connection's) with any tenant the tools did not make is someone's data."""
    if conn.execute("SELECT to_regclass('public.tenants')").fetchone() == (None,):
        return False
    row = conn.execute("SELECT count(*) FROM tenants WHERE slug NOT LIKE 'bench-%' AND slug <> 'default'").fetchone()
    return bool(row and row[0])


def db_env(app_url: str, owner_url: str, **extra: str) -> dict[str, str]:
    """This process's environment with the app role and the owner on another database."""
    return {**os.environ, "DATABASE_URL": app_url, "MIGRATION_DATABASE_URL": owner_url, **extra}


def manage(python: str, env: dict[str, str], *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """`manage.py <args>` in the project root with `env`; the caller checks the outcome."""
    return subprocess.run(
        [python, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def free_port(host: str = "127.0.0.1", ports: range = range(0, 1)) -> int | None:
    """A free port on `host` from `ports` (port 0: any the system picks); None when all are taken."""
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    return None
