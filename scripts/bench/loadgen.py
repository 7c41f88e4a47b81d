"""A bounded, closed-loop HTTP load generator: a fixed list of calls, N threads.

Each thread takes the next call from the list until it is exhausted, so the
number of requests is fixed in advance and the run always ends. A call opens
its own connection (gunicorn's sync workers close after every response), and
its latency is measured from connect to the last byte of the body. Plain
http.client: no dependency, and little client CPU taken from the server on a
2-core machine. Only loopback addresses are accepted.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    token: str | None = None
    body: bytes | None = None
    tenant: str = ""
    port: int = 0  # 0: the run's port; else this server's (interleaving several servers)
    tag: str = ""


@dataclass
class Result:
    start: float  # seconds since the run started
    ms: float
    status: int  # 0 when the request did not complete
    tenant: str
    error: str = ""
    tag: str = ""


def json_body(data: dict) -> bytes:
    return json.dumps(data).encode()


def _loopback_only(host: str) -> None:
    address = ipaddress.ip_address(socket.gethostbyname(host))
    if not address.is_loopback:
        raise SystemExit(f"refusing to send load to {host} ({address}): loopback only")


def request(host: str, port: int, call: Call, timeout: float = 30.0) -> tuple[int, bytes]:
    headers = {"Connection": "close", "Accept": "application/json"}
    if call.token:
        headers["Authorization"] = f"Bearer {call.token}"
    if call.body is not None:
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(call.method, call.path, body=call.body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def run(host: str, port: int, calls: list[Call], concurrency: int, timeout: float = 30.0) -> tuple[list[Result], float]:
    """Send every call once with `concurrency` threads; returns the results and the wall time."""
    _loopback_only(host)
    results: list[Result | None] = [None] * len(calls)
    lock = threading.Lock()
    next_index = 0
    t0 = time.perf_counter()

    def worker() -> None:
        nonlocal next_index
        while True:
            with lock:
                i = next_index
                next_index += 1
            if i >= len(calls):
                return
            call = calls[i]
            start = time.perf_counter()
            try:
                status, _ = request(host, call.port or port, call, timeout)
                error = ""
            except (OSError, http.client.HTTPException) as exc:
                status, error = 0, f"{type(exc).__name__}: {exc}"
            end = time.perf_counter()
            results[i] = Result(start - t0, (end - start) * 1000, status, call.tenant, error, call.tag)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, concurrency))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    return [r for r in results if r is not None], wall
