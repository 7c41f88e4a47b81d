"""Drills: point-in-time recovery and one tenant back, against the writers' own log.

On the drills' own cluster (its archiving, repository and copies in its own directory):
`scripts/pitr.sh setup` and a full backup; three writers (acme, globex, initech, as the app
role, one trade per transaction) log every write with its send and acknowledgement times;
T is marked; then the mistake (every globex trade deleted in one transaction); then more
writes.
- PITR drill: a copy restored to T holds every write acknowledged before T and none sent
  after it; `pitr.sh find` names the mistake's xid; a copy restored to just before that xid
  holds every write acknowledged before the mistake, globex's included.
- tenant-restore drill: `scripts/tenant-pitr.sh` brings globex's trades back (merge,
  BEFORE_XID) while the other tenants keep writing: 0 acknowledged globex writes lost, the
  other tenants' writers see 0 errors and their rows keep their id and xmin.
Skipped where pgBackRest cannot be installed. Figures printed (make drills runs with -s).
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import pytest
from psycopg import sql

from tenants.database.tenant_setting import set_tenant_sql
from tests.support.drills import pitr_script, report
from tests.support.scratch import free_port

pytestmark = pytest.mark.drill

SLUGS = ("acme", "globex", "initech")


@dataclass
class Write:
    slug: str
    id: uuid.UUID
    sent: datetime
    acked: datetime | None = None  # None: failed


@dataclass
class Writers:
    url: str
    tenants: dict[str, tuple[str, str]]  # slug -> (tenant id, user id)
    slugs: tuple[str, ...] = SLUGS
    log: list[Write] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, slug: str) -> None:
        tenant, user = self.tenants[slug]
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                write = Write(slug, uuid.uuid4(), datetime.now().astimezone())
                try:
                    with conn.transaction():
                        conn.execute(set_tenant_sql(uuid.UUID(tenant)))  # SET LOCAL: Citus forwards it
                        conn.execute(
                            "INSERT INTO trades (id, tenant_id, user_id, symbol, side, quantity, price, executed_at, "
                            "created_at) VALUES (%s, %s, %s, 'DRL', 'buy', 1, 1, now(), now())",
                            [write.id, tenant, user],
                        )
                    write.acked = datetime.now().astimezone()
                except psycopg.Error as exc:
                    self.errors.append(f"{slug}: {exc}")
                self.log.append(write)
                time.sleep(0.005)

    def __enter__(self) -> Writers:
        self.threads = [threading.Thread(target=self.run, args=(slug,)) for slug in self.slugs]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def pitr(cluster, *args: str, **env: str) -> subprocess.CompletedProcess:
    return pitr_script(cluster.pitr_env, *args, **env)


@dataclass
class Scenario:
    cluster: object
    writers: Writers
    t: datetime
    mistake_xid: int
    mistake_at: datetime
    deleted: int
    backup_seconds: float


@pytest.fixture(scope="module")
def scenario(own_cluster) -> Iterator[Scenario]:
    if subprocess.run(["bash", "-c", "command -v pgbackrest || command -v apt-get"], capture_output=True).returncode:
        # A drill that cannot run proves nothing: say so as a failure, not a skip.
        pytest.fail("pgBackRest is not installed and apt-get is missing: install pgbackrest, then run the drill")
    base = own_cluster.directory
    own_cluster.pitr_env = {
        "ALPHAPULSE_PGDATA": str(base / "pgdata"),
        "ALPHAPULSE_ENV_FILE": str(base / "env"),
        "PGPORT": str(own_cluster.port),
        "PGBACKREST_DIR": str(base / "pgbackrest"),
        "PITR_COPIES_DIR": str(base / "pitr"),
        **own_cluster.env,
    }
    pitr(own_cluster, "pitr.sh", "setup")
    started = time.monotonic()
    pitr(own_cluster, "pitr.sh", "backup", "full")
    backup_seconds = time.monotonic() - started
    with own_cluster.owner() as owner:
        tenants = {
            slug: tuple(
                map(
                    str,
                    owner.execute(
                        "SELECT t.id, u.id FROM tenants t JOIN users u ON u.tenant_id = t.id WHERE t.slug = %s LIMIT 1",
                        [slug],
                    ).fetchone(),
                )
            )
            for slug in SLUGS
        }
        with Writers(own_cluster.env["DATABASE_URL"], tenants) as writers:
            time.sleep(4)
            t = owner.execute("SELECT clock_timestamp()").fetchone()[0]
            time.sleep(4)
            with owner.transaction():
                xid = owner.execute("SELECT txid_current()").fetchone()[0]
                deleted = owner.execute("DELETE FROM trades WHERE tenant_id = %s", [tenants["globex"][0]]).rowcount
            mistake_at = owner.execute("SELECT clock_timestamp()").fetchone()[0]
            time.sleep(3)
    yield Scenario(own_cluster, writers, t, xid, mistake_at, deleted, backup_seconds)


def restore(cluster, **target: str) -> tuple[int, float, str]:
    port = free_port()
    started = time.monotonic()
    result = pitr(cluster, "pitr.sh", "restore", RESTORE_PORT=str(port), **target)
    return port, time.monotonic() - started, result.stderr


def trade_ids(url: str) -> set[uuid.UUID]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM trades WHERE symbol = 'DRL'")}


def stopped(log: str) -> str:
    return next((line.split(": ", 1)[-1] for line in log.splitlines() if "recovery stopping" in line), "?")


def copy_url(cluster, port: int) -> str:
    return cluster.env["MIGRATION_DATABASE_URL"].replace(f":{cluster.port}/", f":{port}/")


def test_pitr_to_a_second_and_to_just_before_the_mistake(scenario):
    cluster, log = scenario.cluster, scenario.writers.log
    assert not scenario.writers.errors, scenario.writers.errors[:3]
    t_text = scenario.t.strftime("%Y-%m-%d %H:%M:%S.%f%z")
    port, at_seconds, at_log = restore(cluster, AT=t_text)
    try:
        present = trade_ids(copy_url(cluster, port))
    finally:
        pitr(cluster, "pitr.sh", "drop", str(port))
    acked_before = [w for w in log if w.acked and w.acked < scenario.t]
    sent_after = [w for w in log if w.sent > scenario.t]
    missing_at_t = [w for w in acked_before if w.id not in present]
    present_after_t = [w for w in sent_after if w.id in present]

    since = (scenario.t.replace(microsecond=0)).strftime("%Y-%m-%d %H:%M:%S%z")
    started = time.monotonic()
    found = pitr(cluster, "pitr.sh", "find", SINCE=since, TABLE="trades", MIN_ROWS="10").stdout
    find_seconds = time.monotonic() - started
    listed = [line.split()[0] for line in found.splitlines() if line.strip()[:1].isdigit()]
    assert listed and listed[0] == str(scenario.mistake_xid), found

    port, xid_seconds, xid_log = restore(cluster, BEFORE_XID=str(scenario.mistake_xid))
    try:
        present_xid = trade_ids(copy_url(cluster, port))
    finally:
        pitr(cluster, "pitr.sh", "drop", str(port))
    acked_before_mistake = [w for w in log if w.acked and w.acked < scenario.mistake_at]
    missing_xid = [w for w in acked_before_mistake if w.id not in present_xid]
    globex_back = [w for w in acked_before_mistake if w.slug == "globex" and w.id in present_xid]

    report(
        "PITR: restore to T and to just before the mistake's xid",
        writes_logged=len(log),
        full_backup=f"{scenario.backup_seconds:.1f} s",
        restore_to_T=f"{at_seconds:.1f} s to read-write ({stopped(at_log)})",
        acknowledged_before_T_missing=f"{len(missing_at_t)} of {len(acked_before)}",
        sent_after_T_present=f"{len(present_after_t)} of {len(sent_after)}",
        mistake=f"xid {scenario.mistake_xid}, {scenario.deleted} globex trades deleted",
        pitr_find=f"{find_seconds:.1f} s, first listed xid {listed[0]}",
        restore_before_xid=f"{xid_seconds:.1f} s to read-write",
        acknowledged_before_the_mistake_missing=f"{len(missing_xid)} of {len(acked_before_mistake)}",
        globex_trades_back=len(globex_back),
    )
    assert not missing_at_t and not present_after_t
    assert len(acked_before) > 50 and len(sent_after) > 50
    assert not missing_xid and globex_back


def test_one_tenant_back_while_the_others_write(scenario):
    cluster = scenario.cluster
    with cluster.owner() as owner:
        tenants = dict(owner.execute("SELECT slug, id::text FROM tenants").fetchall())

        def others() -> set[tuple]:
            query = sql.SQL("SELECT id::text, xmin::text FROM trades WHERE tenant_id <> %s")
            return set(owner.execute(query, [tenants["globex"]]).fetchall())

        before = others()
        users = {
            slug: owner.execute("SELECT id::text FROM users WHERE tenant_id = %s LIMIT 1", [tenants[slug]]).fetchone()[
                0
            ]
            for slug in ("acme", "initech")
        }
        neighbours = Writers(
            cluster.env["DATABASE_URL"],
            {slug: (tenants[slug], users[slug]) for slug in users},
            slugs=("acme", "initech"),
        )
        started = time.monotonic()
        with neighbours:
            result = pitr(
                cluster, "tenant-pitr.sh", SLUG="globex", BEFORE_XID=str(scenario.mistake_xid), TABLES="trades"
            )
        seconds = time.monotonic() - started
        after = others()
        live = trade_ids(cluster.env["MIGRATION_DATABASE_URL"])
        status = owner.execute("SELECT status FROM tenants WHERE slug = 'globex'").fetchone()[0]
    acked_globex = [w for w in scenario.writers.log if w.slug == "globex" and w.acked]
    lost = [w for w in acked_globex if w.id not in live]
    changed = before - after
    summary = [line for line in result.stdout.splitlines() if "Restored tenant" in line]
    report(
        "one tenant back (tenant-pitr globex BEFORE_XID, merge, trades) while acme and initech write",
        end_to_end=f"{seconds:.1f} s",
        restore_tenant=summary[0].strip() if summary else result.stdout[-300:],
        acknowledged_globex_writes_lost=f"{len(lost)} of {len(acked_globex)}",
        neighbour_writes=f"{len(neighbours.log)}, errors {len(neighbours.errors)}",
        other_tenants_rows_changed=f"{len(changed)} of {len(before)} (id, xmin)",
    )
    assert not lost and acked_globex
    assert not neighbours.errors, neighbours.errors[:3]
    assert not changed
    assert status == "active"
