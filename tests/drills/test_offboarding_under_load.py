"""Drill: offboard one tenant while its neighbours keep trading.

gunicorn (2 workers x 2 threads) on a demo database; four client threads of
acme and globex read and write for the whole drill. After a baseline phase,
`offboard_tenant initech --no-export --reason drill --yes` deletes initech's
rows in batches. Reported: the neighbours' longest request (the stall) and
p99 during the deletion window (from the audit trail's started/finished
times) against the baseline phase of the same run, the deletion's speed, and
the success metrics from /metrics. Asserts: no leak, no 5xx, initech gone,
neighbours' rows intact.
"""

from __future__ import annotations

import statistics
import threading
import time

import pytest

from tests.drills.server_metrics import scrape, success_metrics
from tests.support import scratch
from tests.support.drills import FAST, demo_server_on, report
from tests.support.load import LoadResult, run_load
from tests.support.scratch import connect, gunicorn, manage

pytestmark = pytest.mark.drill

TRADES = 10000  # per demo tenant (load_demo): initech then holds ~14k rows over seven tables
BASELINE_S = 8.0
LOAD_S = 45.0
BATCH = 1000


def phase(result: LoadResult, start: float, end: float) -> tuple[list[float], float]:
    times = [hit.seconds for hit in result.hits if start <= hit.at < end and hit.status in (200, 201)]
    p99 = sorted(times)[int(0.99 * (len(times) - 1))] if times else float("nan")
    return times, p99


def describe(times: list[float], p99: float, longest: str) -> str:
    return (
        f"{len(times)} neighbour requests, median {statistics.median(times) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, {longest} {max(times) * 1000:.1f} ms"
    )


def test_offboarding_a_tenant_does_not_stall_its_neighbours():
    with scratch.demo_database("alphapulse_offboard_drill", trades=TRADES, **{"LOG_LEVEL": "ERROR"}) as db:
        with gunicorn(db, workers=2, threads=2, **FAST) as base, connect("owner", db) as owner:
            server = demo_server_on(base, owner)
            initech = server.tenant_ids["initech"]
            rows_before = {
                slug: owner.execute("SELECT count(*) FROM trades WHERE tenant_id = %s", [tid]).fetchone()[0]
                for slug, tid in server.tenant_ids.items()
                if slug in ("acme", "globex", "initech")
            }
            neighbours = [c for c in server.clients(6) if c[0] != "initech"]
            scraped_before = scrape(base)
            outcome: dict[str, LoadResult] = {}
            wall_start = time.time()
            load = threading.Thread(
                target=lambda: outcome.setdefault("load", run_load(base, neighbours, seconds=LOAD_S))
            )
            load.start()
            time.sleep(BASELINE_S)
            command_started = time.monotonic()
            manage(
                db,
                "offboard_tenant",
                "initech",
                "--no-export",
                "--reason",
                "drill",
                "--yes",
                "--batch-size",
                str(BATCH),
            )
            command_s = time.monotonic() - command_started
            load.join()
            scraped_after = scrape(base)
            started, finished = owner.execute(
                "SELECT min(at) FILTER (WHERE action = 'tenant.offboard.started'), "
                "max(at) FILTER (WHERE action = 'tenant.offboard.finished') FROM platform_audit WHERE tenant_id = %s",
                [initech],
            ).fetchone()
            deleted = owner.execute(
                "SELECT sum((detail->>'rows')::int) FROM platform_audit "
                "WHERE tenant_id = %s AND action = 'tenant.offboard.deleted'",
                [initech],
            ).fetchone()[0]
            left = owner.execute("SELECT count(*) FROM tenants WHERE id = %s", [initech]).fetchone()[0]
            rows_after = {
                slug: owner.execute(
                    "SELECT count(*) FROM trades WHERE tenant_id = %s AND symbol NOT LIKE 'DRILL%%'", [tid]
                ).fetchone()[0]
                for slug, tid in server.tenant_ids.items()
                if slug in ("acme", "globex")
            }
            result = outcome["load"]
            window = (started.timestamp() - wall_start, finished.timestamp() - wall_start)
            assert window[1] < LOAD_S, "the load stopped before the offboarding finished: raise LOAD_S"
            base_times, base_p99 = phase(result, 1.0, window[0] - 0.5)
            off_times, off_p99 = phase(result, *window)
            delete_s = window[1] - window[0]
            report(
                "offboarding a tenant under neighbour load",
                load=result.summary(),
                offboarded=f"initech, {deleted} rows in {delete_s:.2f} s ({deleted / delete_s:,.0f} rows/s), "
                f"batches of {BATCH}; command wall time {command_s:.2f} s",
                baseline=describe(base_times, base_p99, "longest"),
                during_deletion=describe(off_times, off_p99, "longest (the stall)"),
                p99_ratio=f"{off_p99 / base_p99:.2f}",
                success_metrics=success_metrics(scraped_before, scraped_after),
            )
    assert not result.leaks() and not result.server_errors()
    assert result.statuses().keys() <= {200, 201}, result.statuses()
    assert left == 0 and deleted > TRADES
    assert rows_after["acme"] == rows_before["acme"] and rows_after["globex"] == rows_before["globex"]
