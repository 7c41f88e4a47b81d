"""A bounded, mixed-tenant load for the drills: client threads, each logged in
as one tenant's user, read and write through the API and check every response
for rows of another tenant.

Every response is recorded (time, tenant, status, latency, JSON body's
problem if any); drills assert on the records and print a summary.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class Hit:
    at: float  # seconds since the load started
    slug: str
    method: str
    status: int  # 0: no HTTP answer (connection refused, timeout)
    seconds: float
    leak: str = ""  # set when the body held another tenant's tenant_id
    bad_body: str = ""  # set when an error was not JSON {"detail": ...}
    created_id: str = ""  # the id of the row an acknowledged (201) write made


@dataclass
class LoadResult:
    hits: list[Hit] = field(default_factory=list)

    def statuses(self) -> Counter:
        return Counter(hit.status for hit in self.hits)

    def leaks(self) -> list[Hit]:
        return [hit for hit in self.hits if hit.leak]

    def server_errors(self) -> list[Hit]:
        return [hit for hit in self.hits if hit.status >= 500 and hit.status != 503 or hit.bad_body]

    def p(self, q: float, status: int = 200) -> float:
        times = sorted(hit.seconds for hit in self.hits if hit.status == status)
        if not times:
            return float("nan")
        return times[min(len(times) - 1, int(q * len(times)))]

    def summary(self) -> str:
        ok = [hit.seconds for hit in self.hits if hit.status in (200, 201)]
        median = statistics.median(ok) * 1000 if ok else float("nan")
        return (
            f"{len(self.hits)} requests, statuses {dict(sorted(self.statuses().items()))}, "
            f"median {median:.1f} ms, p99 {self.p(0.99) * 1000:.1f} ms, leaks {len(self.leaks())}, "
            f"5xx other than 503 or non-JSON errors {len(self.server_errors())}"
        )


def login(base: str, slug: str, username: str, password: str) -> dict[str, str]:
    response = httpx.post(
        f"{base}/api/auth/token/", json={"tenant": slug, "username": username, "password": password}, timeout=10
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access']}"}


def _check(body: object, tenant_id: str) -> str:
    rows = body.get("results", [body]) if isinstance(body, dict) else []
    foreign = {row.get("tenant_id") for row in rows if isinstance(row, dict)} - {tenant_id, None}
    return ",".join(sorted(foreign))


def run_load(
    base: str,
    clients: list[tuple[str, str, dict[str, str]]],
    *,
    requests_per_client: int | None = None,
    seconds: float | None = None,
    write_every: int = 5,
    timeout: float = 10,
    stop: threading.Event | None = None,
) -> LoadResult:
    """clients: (slug, tenant_id, auth headers) per thread. Stops after a fixed
    number of requests per client, after `seconds`, or once `stop` is set."""
    result = LoadResult()
    lock = threading.Lock()
    started = time.monotonic()
    barrier = threading.Barrier(len(clients))

    def client(slug: str, tenant_id: str, headers: dict[str, str], n: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=timeout) as http:
            barrier.wait()
            i = 0
            while True:
                if requests_per_client is not None and i >= requests_per_client:
                    return
                if seconds is not None and time.monotonic() - started > seconds:
                    return
                if stop is not None and stop.is_set():
                    return
                write = write_every and i % write_every == write_every - 1
                t0 = time.monotonic()
                try:
                    if write:
                        body = {"symbol": f"DRILL{n}", "side": "buy", "quantity": "1", "price": "10.5"}
                        response = http.post("/api/trades/", json=body)
                    else:
                        response = http.get("/api/trades/", params={"page_size": 20})
                    status, payload = response.status_code, None
                    try:
                        payload = response.json()
                    except ValueError:
                        pass
                except httpx.TransportError:
                    status, payload = 0, None
                hit = Hit(t0 - started, slug, "POST" if write else "GET", status, time.monotonic() - t0)
                if status == 201 and isinstance(payload, dict):
                    hit.created_id = str(payload.get("id", ""))
                if status in (200, 201):
                    hit.leak = _check(payload, tenant_id)
                elif status and not (isinstance(payload, dict) and "detail" in payload):
                    hit.bad_body = str(payload)[:200]
                with lock:
                    result.hits.append(hit)
                i += 1

    threads = [threading.Thread(target=client, args=(*c, n)) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.hits.sort(key=lambda hit: hit.at)
    return result
