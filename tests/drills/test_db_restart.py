"""Drill: PostgreSQL stops in the middle of a load run, then comes back.

While it is down the API answers 503 JSON at once (no hang, no 500); after it
is back every gunicorn worker serves again without a restart, and no response
ever holds another tenant's rows. Runs on its own cluster (tests/drills/conftest.py).
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.drills.server_metrics import scrape, success_metrics
from tests.support.drills import report
from tests.support.load import LoadResult, run_load

pytestmark = pytest.mark.drill

LOAD_SECONDS = 18
STOP_AT, START_AT = 5.0, 10.0


def test_database_restart_under_load(own_cluster, own_cluster_server):
    server = own_cluster_server
    outcome: dict[str, LoadResult] = {}
    load = threading.Thread(
        target=lambda: outcome.setdefault("load", run_load(server.base, server.clients(8), seconds=LOAD_SECONDS))
    )
    scraped_before = scrape(server.base)
    started = time.monotonic()
    load.start()

    time.sleep(STOP_AT)
    own_cluster.db_sh("down")
    stopped = time.monotonic() - started
    time.sleep(1)
    t0 = time.monotonic()
    health = httpx.get(f"{server.base}/health", timeout=10)
    health_seconds = time.monotonic() - t0
    time.sleep(max(0.0, START_AT - (time.monotonic() - started)))
    starting = time.monotonic() - started
    own_cluster.db_sh("start")
    restarted = time.monotonic() - started
    load.join()
    result = outcome["load"]

    down = [h for h in result.hits if stopped + 0.5 < h.at and h.at + h.seconds < starting]
    after = [h for h in result.hits if h.at > restarted]
    first_ok = next((h.at + h.seconds for h in after if h.status in (200, 201)), float("nan"))
    settled = [h for h in after if h.at > restarted + 3]
    report(
        "database restart under load",
        load=result.summary(),
        database_down_from=f"{stopped:.1f} s to {starting:.1f} s (up again at {restarted:.1f} s)",
        requests_while_down=f"{len(down)}, statuses {sorted({h.status for h in down})}, "
        f"slowest {max((h.seconds for h in down), default=0) * 1000:.0f} ms",
        health_while_down=f"{health.status_code} {health.json()} in {health_seconds * 1000:.0f} ms",
        first_success_after_start=f"{first_ok - restarted:.2f} s",
        requests_3s_after_start=f"{len(settled)}, statuses {sorted({h.status for h in settled})}",
        success_metrics=success_metrics(scraped_before, scrape(server.base)),
    )

    assert not result.leaks()
    assert not result.server_errors(), result.server_errors()[:5]
    assert health.status_code == 503 and health.json()["database"] == "unavailable"
    assert down and {h.status for h in down} == {503}
    assert max(h.seconds for h in down) < 3.5  # connect_timeout is 3 s; a refused connection is instant
    assert first_ok - restarted < 5
    assert settled and {h.status for h in settled} <= {200, 201}, "a worker did not recover"
