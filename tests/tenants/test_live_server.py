"""The real thing: gunicorn in another process, on a committed scratch database
(migrated and loaded with demo data by `manage.py`), spoken to over HTTP.

What the in-process tests cannot show: one persistent PostgreSQL session
(CONN_MAX_AGE) serving two tenants in turn, and many workers and threads
serving both tenants at once, without one response ever holding the other
tenant's rows, and without a 5xx.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tenants.constants import APP_ROLE
from tests.support.load import login
from tests.support.scratch import DEMO_PASSWORD, FAST_HASHER, connect, demo_database, gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.citus]  # also on the cluster (make test-citus)

GUNICORN = Path(sys.executable).with_name("gunicorn")
DEMO_USERS = {"acme": "alice", "globex": "bob"}
TRADES = "/api/trades/?page_size=50"
POSITIONS = "/api/positions/"


@pytest.fixture(scope="module")
def demo_db() -> Iterator[str]:
    with demo_database("alphapulse_live", trades=50) as name:
        yield name


@pytest.fixture(scope="module")
def demo(demo_db) -> dict:
    """Tenant id and user ids per demo slug, read as the owner (past RLS)."""
    with connect("owner", demo_db) as owner:
        tenants = dict(owner.execute("SELECT slug, id::text FROM tenants").fetchall())
        users = owner.execute("SELECT tenant_id::text, id::text FROM users").fetchall()
    return {
        slug: {"tenant_id": tenants[slug], "user_ids": {u for t, u in users if t == tenants[slug]}}
        for slug in DEMO_USERS
    }


def app_backends(dbname: str) -> set[int]:
    """The app role's PostgreSQL sessions on `dbname` (pid is visible to every role)."""
    with connect("owner", "postgres") as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND usename = %s", [dbname, APP_ROLE]
        ).fetchall()
    return {pid for (pid,) in rows}


def assert_only(response: httpx.Response, tenant: dict, path: str) -> None:
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    results = response.json()["results"]
    assert results, path  # the demo data gives every tenant rows on both routes
    assert {row["tenant_id"] for row in results} == {tenant["tenant_id"]}, path
    assert {row["user"] for row in results} <= tenant["user_ids"], path


def alternate(base: str, demo: dict, rounds: int) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        headers = {slug: login(base, slug, DEMO_USERS[slug], DEMO_PASSWORD) for slug in DEMO_USERS}
        for i in range(rounds):
            for slug in DEMO_USERS:
                path = TRADES if i % 2 == 0 else POSITIONS
                assert_only(http.get(path, headers=headers[slug]), demo[slug], path)
                me = http.get("/api/users/me/", headers=headers[slug])
                assert me.json()["tenant_id"] == demo[slug]["tenant_id"]


def test_alternating_tenants_share_one_persistent_connection(demo_db, demo, tmp_path):
    """1 worker, 1 thread, CONN_MAX_AGE=60: a single PostgreSQL session serves
    acme and globex in turn (50 requests each), and each sees only itself."""
    with gunicorn(demo_db, workers=1, threads=1, CONN_MAX_AGE="60", **FAST_HASHER) as base:
        with httpx.Client(base_url=base, timeout=10) as http:
            headers = {slug: login(base, slug, DEMO_USERS[slug], DEMO_PASSWORD) for slug in DEMO_USERS}
            backends = app_backends(demo_db)
            assert len(backends) == 1, backends
            for i in range(50):
                for slug in DEMO_USERS:
                    path = TRADES if i % 2 == 0 else POSITIONS
                    assert_only(http.get(path, headers=headers[slug]), demo[slug], path)
            # Still the very same session: the tenant changed 100 times on it.
            assert app_backends(demo_db) == backends


def test_alternating_tenants_through_djangos_connection_pool(demo_db, demo, tmp_path):
    with gunicorn(demo_db, workers=1, threads=4, DB_POOL="true", CONN_MAX_AGE="0", **FAST_HASHER) as base:
        alternate(base, demo, rounds=50)


def test_concurrent_requests_of_two_tenants_never_cross(demo_db, demo, tmp_path):
    """2 workers x 4 threads; 8 client threads (4 per tenant) send 400 reads and
    16 writes at once. No response holds the other tenant's rows; no 5xx; every
    write lands in its own tenant."""
    per_thread_reads, per_thread_writes = 50, 2
    symbol = {"acme": "LIVEACME", "globex": "LIVEGLOBEX"}
    failures: list[str] = []
    statuses: list[int] = []
    lock = threading.Lock()

    with gunicorn(demo_db, workers=2, threads=4, CONN_MAX_AGE="60", **FAST_HASHER) as base:
        headers = {slug: login(base, slug, DEMO_USERS[slug], DEMO_PASSWORD) for slug in DEMO_USERS}
        start = threading.Barrier(8)

        def hammer(slug: str, n: int) -> None:
            try:
                with httpx.Client(base_url=base, timeout=30, headers=headers[slug]) as client:
                    start.wait(timeout=30)
                    for i in range(per_thread_reads):
                        path = TRADES if (i + n) % 2 == 0 else POSITIONS
                        response = client.get(path)
                        with lock:
                            statuses.append(response.status_code)
                        assert_only(response, demo[slug], path)
                    for _ in range(per_thread_writes):
                        body = {"symbol": symbol[slug], "side": "buy", "quantity": "1", "price": "10"}
                        created = client.post("/api/trades/", json=body)
                        with lock:
                            statuses.append(created.status_code)
                        assert created.status_code == 201, created.text
                        assert created.json()["tenant_id"] == demo[slug]["tenant_id"]
            except Exception as exc:  # collected and reported by the main thread
                with lock:
                    failures.append(f"{slug}#{n}: {exc!r}")

        threads = [threading.Thread(target=hammer, args=(slug, n)) for slug in DEMO_USERS for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        # Several PostgreSQL sessions (one per serving thread, kept by CONN_MAX_AGE) took part.
        assert len(app_backends(demo_db)) >= 2

    assert failures == []
    assert len(statuses) == 8 * (per_thread_reads + per_thread_writes)
    assert [s for s in statuses if s >= 500] == []
    with connect("owner", demo_db) as owner:
        placed = owner.execute(
            "SELECT symbol, tenant_id::text, count(*) FROM trades WHERE symbol = ANY(%s) GROUP BY 1, 2",
            [list(symbol.values())],
        ).fetchall()
    assert sorted(placed) == sorted(
        (symbol[slug], demo[slug]["tenant_id"], 4 * per_thread_writes) for slug in DEMO_USERS
    )


def test_racing_status_changes_of_one_order_cannot_both_win(demo_db, tmp_path):
    """Fill and cancel the same new order at the same moment, 12 times: the row
    lock taken for the status rules lets exactly one of each pair through."""
    with gunicorn(demo_db, workers=2, threads=4, CONN_MAX_AGE="60", **FAST_HASHER) as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            http.headers.update(login(base, "acme", DEMO_USERS["acme"], DEMO_PASSWORD))
            body = {"symbol": "RACE", "side": "buy", "order_type": "market", "quantity": "1"}
            ids = [http.post("/api/orders/", json=body).json()["id"] for _ in range(12)]
        outcomes: dict[str, list[int]] = {order_id: [] for order_id in ids}
        lock = threading.Lock()

        def change(order_id: str, status: str, start: threading.Barrier) -> None:
            with httpx.Client(base_url=base, timeout=30, headers=http.headers) as client:
                start.wait(timeout=30)
                code = client.patch(f"/api/orders/{order_id}/", json={"status": status}).status_code
            with lock:
                outcomes[order_id].append(code)

        for order_id in ids:
            start = threading.Barrier(2)
            racers = [threading.Thread(target=change, args=(order_id, s, start)) for s in ("filled", "cancelled")]
            for racer in racers:
                racer.start()
            for racer in racers:
                racer.join()
    assert all(sorted(codes) == [200, 400] for codes in outcomes.values()), outcomes
