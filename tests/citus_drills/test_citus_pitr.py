"""Drill (`make citus-drills`): a consistent restore of the whole cluster to a named restore point.

On the project's cluster (its `alphapulse` database): archiving on every node, a backup, then
writers: one per demo tenant (app role, one trade per transaction) and one cross-worker writer
(owner, a trade for a tenant on each worker in ONE transaction: a two-phase commit). Mid-way,
`scripts/citus-pitr.sh point`; then more writes. The cluster restored to that point on new ports
must hold every write acknowledged before the call, none sent after it, and no torn two-phase
commit (both halves or neither); the live cluster must keep every acknowledged write (the guard:
the copy never acts on the live workers). A time target is refused with its reason.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import pytest

from tenants.database.tenant_setting import set_tenant_sql
from tests.support import scratch
from tests.support.drills import report
from tests.support.scratch import ROOT, manage

pytestmark = [
    pytest.mark.drill,
    pytest.mark.skipif(not scratch.ON_CITUS, reason="needs the Citus cluster (make citus-drills)"),
]

CITUS_PORT = int(os.environ.get("CITUS_PORT", "54340"))
DB = "alphapulse"
INSERT = (
    "INSERT INTO trades (id, tenant_id, user_id, symbol, side, quantity, price, executed_at, created_at) "
    "VALUES (%s, %s, %s, 'CPT', 'buy', 1, 1, now(), now())"
)


def script(*args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", "scripts/citus-pitr.sh", *args],
        cwd=ROOT,
        env={**os.environ, "CITUS_PORT": str(CITUS_PORT), **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check:
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


@dataclass
class Log:
    writes: list[tuple[tuple[uuid.UUID, ...], datetime, datetime | None]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def writer(url: str, rows: list[tuple[str, str]], log: Log, stop: threading.Event, as_tenant: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            ids = tuple(uuid.uuid4() for _ in rows)
            sent = datetime.now().astimezone()
            try:
                with conn.transaction():
                    for row_id, (tenant, user) in zip(ids, rows, strict=True):
                        if as_tenant:
                            conn.execute(set_tenant_sql(uuid.UUID(tenant)))  # SET LOCAL: Citus forwards it
                        conn.execute(INSERT, [row_id, tenant, user])
                log.writes.append((ids, sent, datetime.now().astimezone()))
            except psycopg.Error as exc:
                log.errors.append(str(exc))
                log.writes.append((ids, sent, None))
            time.sleep(0.01)


def worker_of(owner: psycopg.Connection, tenant: str) -> int:
    return owner.execute(
        "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
        "WHERE p.shardid = get_shard_id_for_distribution_column('trades', %s::uuid)",
        [tenant],
    ).fetchone()[0]


def tenant_on_another_worker(owner: psycopg.Connection, port: int) -> tuple[str, str]:
    """(tenant id, user id) of a tenant whose trades live on a worker other than `port`."""
    for n in range(40):
        slug = f"cpitr-{n}"
        row = owner.execute("SELECT id::text FROM tenants WHERE slug = %s", [slug]).fetchone()
        if row is None:
            manage(DB, "create_tenant", slug, "--name", slug, "--tier", "pro")
            manage(DB, "create_tenant_user", slug, "u", "--password", "x-drill-password-1", **scratch.FAST_HASHER)
            row = owner.execute("SELECT id::text FROM tenants WHERE slug = %s", [slug]).fetchone()
        if worker_of(owner, row[0]) != port:
            user = owner.execute("SELECT id::text FROM users WHERE tenant_id = %s LIMIT 1", [row[0]]).fetchone()[0]
            return row[0], user
    # Only a cluster of one worker gets here: the drill needs a transaction across two.
    pytest.fail("no tenant lands on a second worker: the drill needs a cluster of at least two workers")


def test_the_cluster_comes_back_to_a_named_restore_point_with_no_torn_two_phase_commit():
    refused = script("restore", check=False, AT="2026-12-03 18:50:35+00")
    assert refused.returncode == 2 and "named restore point only" in refused.stderr, refused.stderr
    script("setup")
    started = time.monotonic()
    script("backup", "incr")
    backup_seconds = time.monotonic() - started
    owner_url, app_url = scratch.url("owner", DB), scratch.url("default", DB)
    with psycopg.connect(owner_url, autocommit=True) as owner:
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
            for slug in ("acme", "globex", "initech")
        }
        far = tenant_on_another_worker(owner, worker_of(owner, tenants["acme"][0]))
    single, pairs, stop = Log(), Log(), threading.Event()
    threads = [threading.Thread(target=writer, args=(app_url, [tenants[s]], single, stop, True)) for s in tenants] + [
        threading.Thread(target=writer, args=(app_url, [tenants["acme"], far], pairs, stop, True))
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)
        name = f"drill-{uuid.uuid4().hex[:8]}"
        call_from = datetime.now().astimezone()
        script("point", name)
        call_to = datetime.now().astimezone()
        time.sleep(3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    started = time.monotonic()
    restored = script("restore", name)
    restore_seconds = time.monotonic() - started
    port = int(next(line.split("=")[1] for line in restored.stdout.splitlines() if line.startswith("COORDINATOR_PORT")))
    try:
        copy_url = owner_url.replace(f":{CITUS_PORT}/", f":{port}/")
        with psycopg.connect(copy_url, autocommit=True) as copy:
            in_copy = {r[0] for r in copy.execute("SELECT id FROM trades WHERE symbol = 'CPT'")}
            copy_nodes = sorted(r[0] for r in copy.execute("SELECT nodeport FROM pg_dist_node"))
    finally:
        script("drop", name)
    with psycopg.connect(owner_url, autocommit=True) as owner:
        live = {r[0] for r in owner.execute("SELECT id FROM trades WHERE symbol = 'CPT'")}

    writes = single.writes + pairs.writes
    acked_before = [ids for ids, sent, acked in writes if acked and acked < call_from]
    sent_after = [ids for ids, sent, acked in writes if sent > call_to]
    missing = [ids for ids in acked_before if not set(ids) <= in_copy]
    present_after = [ids for ids in sent_after if set(ids) & in_copy]
    both = sum(1 for ids, _, _ in pairs.writes if set(ids) <= in_copy)
    neither = sum(1 for ids, _, _ in pairs.writes if not set(ids) & in_copy)
    torn = len(pairs.writes) - both - neither
    live_lost = [ids for ids, _, acked in writes if acked and not set(ids) <= live]
    report(
        "Citus: the whole cluster to a named restore point",
        backup_of_every_node=f"{backup_seconds:.1f} s (incr) + restore point",
        restore=f"{restore_seconds:.1f} s, copy nodes on {copy_nodes}",
        writes=f"{len(single.writes)} single-tenant, {len(pairs.writes)} cross-worker (2PC); errors "
        f"{len(single.errors) + len(pairs.errors)}",
        acknowledged_before_the_point_missing=f"{len(missing)} of {len(acked_before)}",
        sent_after_the_point_present=f"{len(present_after)} of {len(sent_after)}",
        two_phase_commits=f"both {both} / neither {neither} / torn {torn}",
        live_cluster_acknowledged_writes_lost=len(live_lost),
    )
    assert not single.errors and not pairs.errors, (single.errors + pairs.errors)[:3]
    assert acked_before and sent_after and both
    assert not missing and not present_after and torn == 0
    assert not live_lost
    assert CITUS_PORT not in copy_nodes


def test_restore_tenant_on_the_cluster_brings_one_tenant_back_and_touches_no_other(tmp_path):
    """restore_tenant on the cluster (multi-row INSERT ... ON CONFLICT under RLS, one worker's
    transaction): merge brings the deleted trades back; the other tenants keep their (id, xmin)."""
    export = tmp_path / "acme"
    manage(DB, "export_tenant", "acme", "--output", str(export))
    with psycopg.connect(scratch.url("owner", DB), autocommit=True) as owner:
        acme = owner.execute("SELECT id FROM tenants WHERE slug = 'acme'").fetchone()[0]
        want = owner.execute("SELECT * FROM trades WHERE tenant_id = %s ORDER BY id", [acme]).fetchall()

        def others() -> set[tuple]:
            return set(owner.execute("SELECT id::text, xmin::text FROM trades WHERE tenant_id <> %s", [acme]))

        before = others()
        owner.execute("DELETE FROM trades WHERE tenant_id = %s", [acme])
        started = time.monotonic()
        result = manage(DB, "restore_tenant", "acme", "--from", str(export), "--tables", "trades", "--yes")
        seconds = time.monotonic() - started
        got = owner.execute("SELECT * FROM trades WHERE tenant_id = %s ORDER BY id", [acme]).fetchall()
        after = others()
        status = owner.execute("SELECT status FROM tenants WHERE id = %s", [acme]).fetchone()[0]
    report(
        "Citus: restore_tenant acme (merge, trades)",
        command=f"{seconds:.1f} s",
        summary=next(line.strip() for line in result.stdout.splitlines() if "Restored" in line),
        trades_back=f"{len(got)} of {len(want)}",
        other_tenants_rows_changed=f"{len(before - after)} of {len(before)}",
    )
    assert got == want and want
    assert before == after
    assert status == "active"
