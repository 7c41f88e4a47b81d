"""Drill: the API through PgBouncer in transaction pooling, under mixed-tenant load.

Transaction pooling hands a server connection to another client after every
transaction. That is safe here because the design keeps no session state: the
tenant is set with set_config(..., true) inside each request's transaction,
server-side prepared statements are off (prepare_threshold None), and the app
role's timezone is UTC so Django issues no session `SET TIME ZONE`. Eight
Django connections (2 workers x 4 threads) share three server connections, so
consecutive transactions of different tenants do run on the same PostgreSQL
session; no response may hold another tenant's rows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tenants.constants import APP_ROLE
from tests.support.drills import FAST, demo_server_on, report
from tests.support.load import run_load
from tests.support.scratch import connect, free_port, gunicorn

pytestmark = pytest.mark.drill

POOL_SIZE = 3
CLIENTS = 12
REQUESTS_PER_CLIENT = 300


def pgbouncer_binary() -> str:
    path = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(path).exists():
        assert os.geteuid() == 0, "pgbouncer is missing: apt-get install pgbouncer"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "-q", "pgbouncer"], env=env, capture_output=True).returncode:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
            subprocess.run(["apt-get", "install", "-y", "-q", "pgbouncer"], env=env, capture_output=True, check=True)
    return path


@pytest.fixture(scope="module")
def pgbouncer(demo_database) -> Iterator[int]:
    binary = pgbouncer_binary()
    app = settings.DATABASES["default"]
    directory = Path(tempfile.mkdtemp(prefix="alphapulse-pgbouncer-"))
    port = free_port()
    (directory / "userlist.txt").write_text(f'"{app["USER"]}" "{app["PASSWORD"]}"\n')
    (directory / "pgbouncer.ini").write_text(
        f"""[databases]
{demo_database} = host={app["HOST"]} port={app["PORT"]} dbname={demo_database}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {directory}/userlist.txt
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = {directory}/pgbouncer.log
"""
    )
    command = [binary, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        shutil.chown(directory, "postgres")
        for item in directory.iterdir():
            shutil.chown(item, "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    bouncer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                url = f"postgres://{app['USER']}:{app['PASSWORD']}@127.0.0.1:{port}/{demo_database}"
                psycopg.connect(url, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if bouncer.poll() is not None or time.monotonic() > deadline:
                    log = directory / "pgbouncer.log"
                    pytest.fail(f"pgbouncer did not start:\n{log.read_text() if log.exists() else ''}")
                time.sleep(0.2)
        yield port
    finally:
        bouncer.terminate()
        bouncer.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def app_sessions(dbname: str) -> int:
    with connect("owner", dbname) as owner:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND usename = %s"
        return owner.execute(query, [dbname, APP_ROLE]).fetchone()[0]


def test_mixed_tenant_load_through_transaction_pooling(demo_database, pgbouncer):
    app = settings.DATABASES["default"]
    through_bouncer = f"postgres://{app['USER']}:{app['PASSWORD']}@127.0.0.1:{pgbouncer}/{demo_database}"
    with gunicorn(demo_database, workers=2, threads=4, DATABASE_URL=through_bouncer, **FAST) as base:
        with connect("owner", demo_database) as owner:
            server = demo_server_on(base, owner)
        started = time.monotonic()
        result = run_load(base, server.clients(CLIENTS), requests_per_client=REQUESTS_PER_CLIENT, write_every=4)
        seconds = time.monotonic() - started
        sessions = app_sessions(demo_database)
    with connect("owner", demo_database) as owner:
        written = dict(
            owner.execute(
                "SELECT t.slug, count(*) FROM trades x JOIN tenants t ON t.id = x.tenant_id "
                "WHERE x.symbol LIKE 'DRILL%%' GROUP BY t.slug"
            ).fetchall()
        )
    expected_writes = {slug: 0 for slug in server.tenant_ids if slug in {c[0] for c in server.clients(CLIENTS)}}
    for hit in result.hits:
        if hit.method == "POST" and hit.status == 201:
            expected_writes[hit.slug] += 1
    report(
        "PgBouncer, transaction pooling",
        load=result.summary(),
        throughput=f"{len(result.hits) / seconds:.0f} requests/s over {seconds:.1f} s",
        clients=f"{CLIENTS} threads over {len(expected_writes)} tenants -> 8 Django connections -> "
        f"{sessions} PostgreSQL sessions (pool size {POOL_SIZE})",
        writes_per_tenant=written,
    )
    assert len(result.hits) == CLIENTS * REQUESTS_PER_CLIENT
    assert not result.leaks(), result.leaks()[:5]
    assert result.statuses().keys() <= {200, 201}, result.statuses()
    assert 1 <= sessions <= POOL_SIZE  # many tenants' transactions really shared few sessions
    assert written == expected_writes  # every write landed, in its own tenant
