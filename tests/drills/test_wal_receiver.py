"""Drill: RPO 0 with the synchronous WAL receiver (`make pitr-receiver-up`), and what it costs.

On the drills' own cluster: archiving and a full backup (`scripts/pitr.sh`), then the receiver.
1. Cost: one writer commits single-row trades, alternating every half second between
   `synchronous_commit = on` (waits for the receiver's flush) and `local` (does not), so both
   see the same machine; commits per second of each are reported.
2. The receiver is the guard, so a commit waits while it is gone: with the receiver killed and
   the setting left in place, a commit does not return; `receiver-down` clears the setting and
   the commit returns.
3. RPO: the receiver back, writers log every acknowledged commit, the server dies (immediate
   stop, as a lost machine); a copy restored from the backup, the archive and the receiver's
   WAL (`WITH_RECEIVER=1`) holds every acknowledged write. The server is then started again
   (other drills share it) and the receiver taken down.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid

import psycopg
import pytest

from tenants.database.tenant_setting import set_tenant_sql
from tests.support.drills import pitr_script, report
from tests.support.scratch import ROOT, free_port

pytestmark = pytest.mark.drill

INSERT = (
    "INSERT INTO trades (id, tenant_id, user_id, symbol, side, quantity, price, executed_at, created_at) "
    "VALUES (%s, %s, %s, 'RPO', 'buy', 1, 1, now(), now())"
)


def script(cluster, *args: str, **env: str) -> subprocess.CompletedProcess:
    return pitr_script(cluster.pitr_env, "pitr.sh", *args, **env)


def write_one(conn: psycopg.Connection, tenant: str, user: str) -> uuid.UUID:
    trade = uuid.uuid4()
    with conn.transaction():
        conn.execute(set_tenant_sql(uuid.UUID(tenant)))
        conn.execute(INSERT, [trade, tenant, user])
    return trade


@pytest.fixture(scope="module")
def receiver_cluster(own_cluster):
    base = own_cluster.directory
    own_cluster.pitr_env = {
        "ALPHAPULSE_PGDATA": str(base / "pgdata"),
        "ALPHAPULSE_ENV_FILE": str(base / "env"),
        "PGPORT": str(own_cluster.port),
        "PGBACKREST_DIR": str(base / "pgbackrest"),
        "PITR_COPIES_DIR": str(base / "pitr"),
        "WAL_RECEIVER_DIR": str(base / "walreceiver"),
        **own_cluster.env,
    }
    script(own_cluster, "setup")
    script(own_cluster, "backup", "full")
    script(own_cluster, "receiver-up")
    with own_cluster.owner() as owner:
        tenant, user = map(
            str,
            owner.execute(
                "SELECT t.id, u.id FROM tenants t JOIN users u ON u.tenant_id = t.id WHERE t.slug = 'acme' LIMIT 1"
            ).fetchone(),
        )
    try:
        yield own_cluster, tenant, user
    finally:
        if subprocess.run(
            ["bash", "scripts/db.sh", "status"], cwd=ROOT, env={**os.environ, **own_cluster.pitr_env}
        ).returncode:
            own_cluster.db_sh("up")
        script(own_cluster, "receiver-down")


def test_the_receiver_costs_commits_and_holds_them_while_it_is_gone(receiver_cluster):
    cluster, tenant, user = receiver_cluster
    counts = {"on": 0, "local": 0}
    seconds = {"on": 0.0, "local": 0.0}
    with psycopg.connect(cluster.env["DATABASE_URL"], autocommit=True) as conn:
        for round_ in range(12):
            mode = ("on", "local")[round_ % 2]
            conn.execute("SELECT set_config('synchronous_commit', %s, false)", [mode])
            started = time.monotonic()
            while time.monotonic() - started < 0.5:
                write_one(conn, tenant, user)
                counts[mode] += 1
            seconds[mode] += time.monotonic() - started
        conn.execute("RESET synchronous_commit")
    rate = {mode: counts[mode] / seconds[mode] for mode in counts}

    # The receiver gone, the setting left: a commit waits.
    subprocess.run(["pkill", "-f", f"pg_receivewal -D {cluster.pitr_env['WAL_RECEIVER_DIR']} "], check=False)
    done = threading.Event()

    def commit() -> None:
        with psycopg.connect(cluster.env["DATABASE_URL"], autocommit=True) as conn:
            write_one(conn, tenant, user)
        done.set()

    thread = threading.Thread(target=commit)
    thread.start()
    waited = not done.wait(3)
    script(cluster, "receiver-down")
    released = done.wait(10)
    thread.join(10)
    script(cluster, "receiver-up")
    report(
        "Synchronous WAL receiver: cost per commit and a receiver that is gone",
        commits_per_second_waiting_for_the_receiver=f"{rate['on']:.0f}",
        commits_per_second_local_flush_only=f"{rate['local']:.0f}",
        ratio=f"{rate['on'] / rate['local']:.3f}",
        commit_while_the_receiver_is_gone="waited 3 s" if waited else "returned (the guard is off!)",
        after_receiver_down="returned" if released else "still waiting",
    )
    assert waited and released


def test_a_lost_server_loses_no_acknowledged_commit(receiver_cluster):
    cluster, tenant, user = receiver_cluster
    acked: list[uuid.UUID] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            with psycopg.connect(cluster.env["DATABASE_URL"], autocommit=True) as conn:
                while not stop.is_set():
                    acked.append(write_one(conn, tenant, user))
        except psycopg.Error:
            pass  # the server died under us: what was acknowledged before is in `acked`

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(4)
    pgdata = cluster.pitr_env["ALPHAPULSE_PGDATA"]
    pg_ctl = sorted(__import__("glob").glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_pg, pg_ctl, "-D", pgdata, "-m", "immediate", "stop"], check=True, capture_output=True)
    stop.set()
    for thread in threads:
        thread.join()
    time.sleep(1)  # the receiver has flushed what it acknowledged; nothing more can come

    port = free_port()
    started = time.monotonic()
    script(cluster, "restore", AT="latest", RESTORE_PORT=str(port), WITH_RECEIVER="1")
    restore_seconds = time.monotonic() - started
    url = cluster.env["MIGRATION_DATABASE_URL"].replace(f":{cluster.port}/", f":{port}/")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            present = {row[0] for row in conn.execute("SELECT id FROM trades WHERE symbol = 'RPO'")}
    finally:
        script(cluster, "drop", str(port))
    lost = [trade for trade in acked if trade not in present]
    report(
        "Synchronous WAL receiver: the server lost under 3 writers, restored from backup + archive + receiver",
        acknowledged_writes=len(acked),
        restore_to_read_write=f"{restore_seconds:.1f} s",
        acknowledged_writes_lost=len(lost),
    )
    assert len(acked) > 100
    assert not lost
