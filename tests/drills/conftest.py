"""Shared by the drills (`make drills`, marker `drill`; not part of `make test`).

- `own_cluster`: a throw-away PostgreSQL cluster (scripts/db.sh with its own
  data directory, port and .env) that a drill may stop, restart or flip the
  cluster-wide RLS bypass on, without touching the project's cluster.
- `demo_server`: gunicorn on a demo database, rate limits off (the drills load
  one tenant far beyond its tier), with each demo tenant's tokens.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.support import scratch
from tests.support.drills import FAST, DemoServer, demo_server_on
from tests.support.scratch import ROOT, free_port, gunicorn, manage


@dataclass
class Cluster:
    directory: Path
    port: int
    env: dict[str, str]  # DATABASE_URL and MIGRATION_DATABASE_URL of its `alphapulse` database

    def db_sh(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "scripts/db.sh", *args],
            cwd=ROOT,
            env={
                **os.environ,
                "ALPHAPULSE_PGDATA": str(self.directory / "pgdata"),
                "ALPHAPULSE_ENV_FILE": str(self.directory / "env"),
                "PGPORT": str(self.port),
            },
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )

    def owner(self) -> psycopg.Connection:
        return psycopg.connect(self.env["MIGRATION_DATABASE_URL"], autocommit=True)


@pytest.fixture(scope="session")
def own_cluster() -> Iterator[Cluster]:
    directory = Path(tempfile.mkdtemp(prefix="alphapulse-drill-"))
    directory.chmod(0o755)  # the server runs as `postgres` when we are root
    cluster = Cluster(directory, free_port(), {})
    try:
        cluster.db_sh("up")
        values = dict(
            line.split("=", 1)
            for line in (directory / "env").read_text().splitlines()
            if "=" in line and line[0] != "#"
        )
        cluster.env = {k: values[k] for k in ("DATABASE_URL", "MIGRATION_DATABASE_URL")}
        manage("unused", "migrate", **cluster.env)
        manage("unused", "load_demo", "--trades", "200", **cluster.env, **FAST)
        yield cluster
    finally:
        try:
            cluster.db_sh("down")
        finally:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def demo_database() -> Iterator[str]:
    """A demo database on the project's own cluster (for drills that stop nothing)."""
    with scratch.demo_database("alphapulse_drill", trades=200) as name:
        yield name


@pytest.fixture
def own_cluster_server(own_cluster) -> Iterator[DemoServer]:
    with gunicorn("unused", workers=2, threads=2, **own_cluster.env, **FAST) as base:
        with own_cluster.owner() as owner:
            yield demo_server_on(base, owner)
