"""Rate limits are exact across gunicorn workers: the counters live in Redis.

4 gunicorn workers, 8 client threads at once. With a per-process cache each
worker would count on its own and let up to 4x the budget through; with the
shared counter exactly `limit` requests pass and every other one is a 429.
Day-long windows, so no window boundary falls inside the test.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.support.load import login
from tests.support.scratch import DEMO_PASSWORD, FAST_HASHER, demo_database, gunicorn

pytestmark = pytest.mark.slow

TENANT_LIMIT, LOGIN_LIMIT = 25, 10
LOGINS = {"acme": "alice", "globex": "bob"}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, dict[str, dict[str, str]]]]:
    with demo_database("alphapulse_limits", trades=20) as name:
        env = {
            **FAST_HASHER,
            "TENANT_RATE_LIMITS": f"pro={TENANT_LIMIT}/day,starter=none,enterprise=none,free=none",
            "LOGIN_RATE_LIMIT": f"{LOGIN_LIMIT}/day",
        }
        with gunicorn(name, workers=4, threads=2, **env) as base:
            # 2 of LOGIN_LIMIT spent here, whichever test runs first.
            headers = {slug: login(base, slug, user, DEMO_PASSWORD) for slug, user in LOGINS.items()}
            yield base, headers


def burst(base: str, count: int, send) -> Counter:
    codes: Counter = Counter()
    lock = threading.Lock()
    start = threading.Barrier(8)

    def client(n: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            start.wait(timeout=30)
            for _ in range(n):
                code = send(http).status_code
                with lock:
                    codes[code] += 1

    threads = [threading.Thread(target=client, args=(count // 8,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return codes


def test_the_tier_limit_is_exact_across_four_workers(server):
    base, headers = server
    codes = burst(base, 80, lambda http: http.get("/api/trades/?page_size=1", headers=headers["acme"]))
    assert codes == Counter({200: TENANT_LIMIT, 429: 80 - TENANT_LIMIT})
    # Another tenant's budget is its own (starter: unlimited here).
    assert httpx.get(f"{base}/api/trades/?page_size=1", headers=headers["globex"]).status_code == 200


def test_the_login_limit_is_exact_across_four_workers(server):
    base, _ = server
    used = len(LOGINS)  # the fixture's logins: same address, same day window
    wrong = {"tenant": "acme", "username": "alice", "password": "wrong"}
    codes = burst(base, 40, lambda http: http.post("/api/auth/token/", json=wrong))
    assert codes == Counter({401: LOGIN_LIMIT - used, 429: 40 - (LOGIN_LIMIT - used)})
