"""Drills (`make citus-drills`): the operations a growing platform runs on its
Citus cluster, each while gunicorn serves mixed-tenant API traffic from it.

1. a worker joins and the shards are rebalanced onto it;
2. the biggest tenant is isolated onto shards of its own and moved to that
   worker (or off it, when the rebalance put it there already);
3. a worker restarts.

Each reports requests served, failed, rows of another tenant seen, whether
every acknowledged write is there afterwards, and the longest stall (the
slowest request while the operation ran). The drill database is a scratch
database on the project's cluster (scripts/citus.sh createdb); the added worker
is registered in that database only and removed at the end.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import scratch
from tests.support.drills import DEMO_USERS, FAST, DemoServer, demo_server_on, report
from tests.support.load import LoadResult, run_load
from tests.support.scratch import ROOT, connect, demo_database, gunicorn, manage

pytestmark = [
    pytest.mark.drill,
    pytest.mark.skipif(not scratch.ON_CITUS, reason="needs the Citus cluster (make citus-drills)"),
]

CITUS_PORT = int(os.environ.get("CITUS_PORT", "54340"))
NEW_WORKER_PORT = int(os.environ.get("CITUS_DRILL_WORKER_PORT", CITUS_PORT + 3))
CLIENTS = 6  # two per demo tenant
SERVER_LOG = Path(tempfile.gettempdir()) / "alphapulse-citus-drill-gunicorn.log"
WARM_UP, COOL_DOWN = 2.0, 2.0


def citus_sh(*args: str) -> float:
    started = time.monotonic()
    subprocess.run(["bash", "scripts/citus.sh", *args], cwd=ROOT, check=True, capture_output=True, timeout=300)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def drill_db() -> Iterator[str]:
    with demo_database("alphapulse_citus_drill", trades=1000) as name:
        try:
            yield name
        finally:
            # The database goes first (with its shards on the added worker), then the worker.
            scratch.drop_database(name)
            citus_sh("remove-worker", str(NEW_WORKER_PORT))


@pytest.fixture(scope="module")
def server(drill_db) -> Iterator[DemoServer]:
    with gunicorn(drill_db, workers=2, threads=4, log_path=SERVER_LOG, CONN_MAX_AGE="60", **FAST) as base:
        with connect("owner", drill_db) as owner:
            yield demo_server_on(base, owner)


@dataclass
class Drill:
    load: LoadResult
    operation_from: float
    operation_to: float
    output: str

    def during(self):
        return [h for h in self.load.hits if h.at + h.seconds >= self.operation_from and h.at <= self.operation_to]

    def failed(self):
        return [h for h in self.load.hits if h.status not in (200, 201)]

    def longest_stall_ms(self) -> float:
        return max((h.seconds for h in self.during()), default=0.0) * 1000


def under_load(server: DemoServer, operation: Callable[[], str]) -> Drill:
    stop = threading.Event()
    outcome: dict[str, LoadResult] = {}
    load = threading.Thread(
        target=lambda: outcome.setdefault(
            "load", run_load(server.base, server.clients(CLIENTS), seconds=600, write_every=3, stop=stop)
        )
    )
    started = time.monotonic()
    load.start()
    time.sleep(WARM_UP)
    try:
        op_from = time.monotonic() - started
        output = operation()
        op_to = time.monotonic() - started
        time.sleep(COOL_DOWN)
    finally:
        stop.set()
        load.join()
    return Drill(outcome["load"], op_from, op_to, output)


def missing_writes(drill_db: str, drill: Drill) -> int:
    acknowledged = [h.created_id for h in drill.load.hits if h.status == 201]
    assert acknowledged, "the load made no writes"
    with connect("owner", drill_db) as owner:
        (present,) = owner.execute("SELECT count(*) FROM trades WHERE id::text = ANY(%s)", [acknowledged]).fetchone()
    return len(acknowledged) - present


def figures(title: str, drill_db: str, drill: Drill, **extra: object) -> dict:
    values = {
        "requests_served": len(drill.load.hits),
        "failed": len(drill.failed()),
        "rows_of_another_tenant": len(drill.load.leaks()),
        "acknowledged_writes_missing": missing_writes(drill_db, drill),
        "operation_seconds": f"{drill.operation_to - drill.operation_from:.2f}",
        "longest_stall_ms": f"{drill.longest_stall_ms():.0f}",
        "load": drill.load.summary(),
        **extra,
    }
    report(title, **values)
    return values


def placements(drill_db: str) -> dict[int, int]:
    with connect("owner", drill_db) as owner:
        rows = owner.execute(
            "SELECT nodeport, count(*) FROM citus_shards WHERE table_name = 'trades'::regclass GROUP BY nodeport"
        ).fetchall()
    return {port: count for port, count in rows}


def test_add_a_worker_and_rebalance_under_load(drill_db, server):
    before = placements(drill_db)

    def operation() -> str:
        added = citus_sh("add-worker", str(NEW_WORKER_PORT), drill_db)
        rebalanced = manage(drill_db, "citus_rebalance").stdout.strip()
        return f"worker added in {added:.1f} s; {rebalanced}"

    drill = under_load(server, operation)
    after = placements(drill_db)
    values = figures(
        "Citus: add a worker and rebalance under load",
        drill_db,
        drill,
        output=drill.output,
        trades_shards_per_port_before=before,
        trades_shards_per_port_after=after,
    )
    assert after.get(NEW_WORKER_PORT, 0) > 0, "the rebalance put no shard on the new worker"
    assert values["failed"] == 0, drill.failed()[:5]
    assert values["rows_of_another_tenant"] == 0
    assert values["acknowledged_writes_missing"] == 0


def test_isolate_the_biggest_tenant_and_move_it_under_load(drill_db, server):
    with connect("owner", drill_db) as owner:
        slug, rows = owner.execute(
            "SELECT t.slug, count(*) FROM trades JOIN tenants t ON t.id = trades.tenant_id"
            " GROUP BY t.slug ORDER BY count(*) DESC, t.slug LIMIT 1"
        ).fetchone()

    # To the new worker; if the rebalance already put the tenant there, to the
    # first worker instead, so that the drill always moves a shard.
    with connect("owner", drill_db) as owner:
        (now_on,) = owner.execute(
            "SELECT nodeport FROM citus_shards WHERE table_name = 'trades'::regclass AND shardid ="
            " get_shard_id_for_distribution_column('trades', (SELECT id FROM tenants WHERE slug = %s))",
            [slug],
        ).fetchone()
    target = NEW_WORKER_PORT if now_on != NEW_WORKER_PORT else CITUS_PORT + 1

    def operation() -> str:
        to = f"127.0.0.1:{target}"
        return manage(drill_db, "citus_move_tenant", slug, "--to", to, "--isolate").stdout.strip().replace("\n", "; ")

    drill = under_load(server, operation)
    with connect("owner", drill_db) as owner:
        (port, sharing) = owner.execute(
            "SELECT nodeport, (SELECT count(*) FROM tenants o WHERE o.id <> t.id AND"
            " get_shard_id_for_distribution_column('trades', o.id) = s.shardid)"
            " FROM tenants t JOIN citus_shards s ON s.table_name = 'trades'::regclass"
            " AND s.shardid = get_shard_id_for_distribution_column('trades', t.id) WHERE t.slug = %s",
            [slug],
        ).fetchone()
    values = figures(
        f"Citus: isolate the biggest tenant ({slug}, {rows} trades) and move it under load",
        drill_db,
        drill,
        output=drill.output,
        tenant_now_on_port=port,
        other_tenants_in_its_shard=sharing,
    )
    assert port == target and sharing == 0
    assert values["failed"] == 0, drill.failed()[:5]
    assert values["rows_of_another_tenant"] == 0
    assert values["acknowledged_writes_missing"] == 0


def test_a_worker_restart_under_load(drill_db, server):
    # The worker that holds the most of the load's tenants (the drill means nothing on an idle one).
    with connect("owner", drill_db) as owner:
        where = owner.execute(
            "SELECT t.slug, s.nodeport FROM tenants t JOIN citus_shards s ON s.table_name = 'trades'::regclass"
            " AND s.shardid = get_shard_id_for_distribution_column('trades', t.id) WHERE t.slug = ANY(%s)",
            [list(DEMO_USERS)],
        ).fetchall()
    ports = sorted({port for _, port in where}, key=lambda p: (-sum(1 for _, q in where if q == p), p))
    restarted = ports[0]
    on_worker = {slug for slug, port in where if port == restarted}

    drill = under_load(server, lambda: f"restarted in {citus_sh('restart-worker', str(restarted)):.2f} s")
    failed = drill.failed()
    last_failure = max((h.at for h in failed), default=drill.operation_to)
    values = figures(
        f"Citus: restart worker {restarted} under load",
        drill_db,
        drill,
        output=drill.output,
        demo_tenants_on_that_worker=sorted(on_worker),
        failed_by_status=sorted({h.status for h in failed}),
        failed_tenants=sorted({h.slug for h in failed}),
        last_failure_after_restart_s=f"{last_failure - drill.operation_to:.2f}",
    )
    assert values["rows_of_another_tenant"] == 0
    assert values["acknowledged_writes_missing"] == 0
    errors = [line for line in SERVER_LOG.read_text(errors="replace").splitlines() if "Error" in line]
    assert not drill.load.server_errors(), (drill.load.server_errors()[:5], errors[-20:])
    # A worker that is down cannot serve its tenants: they get 503 (JSON,
    # Retry-After) for the seconds it is away, and nobody else notices.
    assert {h.slug for h in failed} <= on_worker
    assert {h.status for h in failed} <= {503}
    assert all(h.at < drill.operation_to + 1.0 for h in failed), "failures went on after the worker was back"
