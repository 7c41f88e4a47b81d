"""Scratch databases for tests that need committed data or real `manage.py`
runs (migrations, backups): created by the owner role, dropped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from scripts import devdb
from tenants.catalog.servers import Server

ROOT = devdb.ROOT
# make test-citus: the suite runs against the Citus cluster of scripts/citus.sh.
# A database there exists on every node, with citus in each and the nodes
# registered in it, which only the cluster's superuser can do: the script does.
ON_CITUS = os.environ.get("TEST_ON_CITUS") == "1"


def citus_sh(*args: str) -> None:
    result = subprocess.run(["bash", "scripts/citus.sh", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"scripts/citus.sh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def url(alias: str, dbname: str) -> str:
    return Server.of(alias).url(dbname)


def connect(alias: str, dbname: str) -> psycopg.Connection:
    return Server.of(alias).connect(dbname, autocommit=True)


def create_database(name: str) -> None:
    if ON_CITUS:
        citus_sh("createdb", name)
        return
    with connect("owner", "postgres") as admin:
        devdb.create_database(admin, name)


def drop_database(name: str) -> None:
    if ON_CITUS:
        citus_sh("dropdb", name)
        return
    with connect("owner", "postgres") as admin:
        devdb.drop_database(admin, name)


@contextmanager
def scratch_database(prefix: str = "alphapulse_scratch") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    create_database(name)
    try:
        yield name
    finally:
        drop_database(name)


def db_env(dbname: str, **extra: str) -> dict[str, str]:
    return devdb.db_env(url("default", dbname), url("owner", dbname), **extra)


def manage(dbname: str, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    result = devdb.manage(sys.executable, db_env(dbname, **env), *args, timeout=300)
    if check and result.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def script(path: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", path], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        pytest.fail(f"{path} failed:\n{result.stdout}\n{result.stderr}")
    return result


def free_port() -> int:
    port = devdb.free_port()
    assert port is not None  # port 0: the system always has one
    return port


@contextmanager
def gunicorn(
    dbname: str, *, workers: int = 1, threads: int = 1, log_path: Path | None = None, **env: str
) -> Iterator[str]:
    """Serve the project with gunicorn on loopback against `dbname`; yields the base URL.
    The server's output goes to `log_path` when given (kept for a drill's report)."""
    port = free_port()
    # Rate-limit counters of this server only (they live in the shared Redis):
    # each server starts with full budgets, as each test did with a local cache.
    env.setdefault("CACHE_KEY_PREFIX", f"test-server-{uuid.uuid4().hex[:8]}")
    log = open(log_path, "w+b") if log_path else tempfile.TemporaryFile()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "alphapulse.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ],
        cwd=ROOT,
        env=db_env(dbname, **env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"gunicorn did not come up:\n{log.read().decode(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        forget_cache_prefix(env["CACHE_KEY_PREFIX"])


def forget_cache_prefix(prefix: str) -> None:
    """Delete the keys a test server or test left in the shared Redis under `prefix`."""
    from django.conf import settings

    with redis.Redis.from_url(settings.REDIS_URL) as client:
        stale = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if stale:
            client.delete(*stale)


# load_demo's password for every demo user.
DEMO_PASSWORD = "alphapulse-demo"
# Demo users are hashed by load_demo and checked by a server: both with MD5, so logins are instant.
FAST_HASHER = {"PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher"}


@contextmanager
def demo_database(prefix: str, trades: int, **env: str) -> Iterator[str]:
    """A scratch database, migrated, with `load_demo` data (acme, globex, initech)."""
    with scratch_database(prefix) as name:
        manage(name, "migrate")
        manage(name, "load_demo", "--trades", str(trades), **FAST_HASHER, **env)
        yield name
