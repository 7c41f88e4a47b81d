"""Where one request's time goes, phase by phase, in process (no HTTP, no gunicorn).

    PYTHONPATH=scripts python -m bench.profile --db alphapulse_bench_on [--settings bench.floor.settings]

Runs each scenario's request --requests times through Django's test client
against a bench database and times, per request: token verification, the
opening round trip (BEGIN + SET LOCAL + tenant + user, tenants.database.tenant_setting), every
other query (Django's execute wrapper), COMMIT, serialization, rendering, the
per-tenant throttle (its Redis INCR+EXPIRE), the JSON request log line
(platform_ops.request_log), the Prometheus metrics (labels, inc, observe, in
multi-process mode as gunicorn runs them), and the rest (Django, DRF, middleware
code); the CPU time per request of this process and of its PostgreSQL backend
(/proc/<pid>/schedstat), which the machine's load does not inflate as it does
waits; then the round trips of one more request (libpq's trace,
tests/support/roundtrips.py). Prints medians in microseconds as a
Markdown table (and JSON with --json). Timers add a few microseconds each.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--settings", default="alphapulse.settings")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


# Run by the response's close (the WSGI server calls it once the body is sent; the test
# client calls it before returning): timed, but not part of what the client waits for.
AFTER_RESPONSE = "request log (after the response)"
COMMIT_ANSWER = "read-only COMMIT's answer (after the response)"
NOT_WAITED_FOR = (AFTER_RESPONSE, COMMIT_ANSWER)
# CPU time per request (all requests of the batch over their number): the work done,
# whatever the machine's load made each wait cost.
APP_CPU = "CPU: this process (Python)"
DB_CPU = "CPU: its PostgreSQL backend"


def backend_cpu_ns(pid: int) -> int | None:
    """Nanoseconds on CPU of process `pid` (/proc/<pid>/schedstat), or None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Phases:
    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.depth: dict[str, int] = defaultdict(int)

    def wrap(self, owner: Any, name: str, phase: str) -> None:
        original: Callable = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.depth[phase]:
                return original(*args, **kwargs)
            self.depth[phase] += 1
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.current[phase] += time.perf_counter() - t0
                self.depth[phase] -= 1

        setattr(owner, name, timed)

    def query(self, execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if not self.depth["opening round trip"]:
                words = sql.split()
                after = [words[i + 1] for i, w in enumerate(words[:-1]) if w.upper() in ("FROM", "INTO", "UPDATE")]
                label = f"query: {words[0]} {after[0] if after else ''}"
                self.current[label] += time.perf_counter() - t0


def fills_route() -> bool:
    """Whether the served URL conf has fills (the product's does, the floor's does not)."""
    from django.urls import Resolver404, resolve

    try:
        resolve("/api/orders/00000000-0000-0000-0000-000000000000/fills/")
    except Resolver404:
        return False
    return True


def main() -> None:
    args = parse_args()
    sys.path.insert(0, os.getcwd())
    from bench.common import db_env

    os.environ.update(db_env(args.db, DJANGO_SETTINGS_MODULE=args.settings, DEBUG="false"))
    # Metrics as the shipped server keeps them (gunicorn.conf.py): multi-process mode, one file per process.
    import tempfile

    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="alphapulse-profile-metrics-"))
    os.environ.setdefault("TENANT_RATE_LIMITS", ",".join(f"{t}=100000000/min" for t in ("free", "starter", "pro",
                                                                                         "enterprise")))  # fmt: skip
    import django

    django.setup()
    from django.db import connection
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.test import Client
    from rest_framework import renderers, serializers
    from rest_framework_simplejwt import tokens

    import tenants.context
    from tenants.context import tenant_context
    from tenants.http.auth import tokens_for
    from tenants.models import Tenant, User
    from tests.support.roundtrips import count_round_trips
    from trading.models import Trade

    phases = Phases()
    phases.wrap(tokens.Token, "__init__", "token verification")
    phases.wrap(tenants.context, "open_tenant_transaction", "opening round trip")
    phases.wrap(BaseDatabaseWrapper, "commit", "COMMIT")
    phases.wrap(serializers.ListSerializer, "to_representation", "serialization")
    phases.wrap(serializers.Serializer, "to_representation", "serialization")
    phases.wrap(renderers.JSONRenderer, "render", "rendering")
    from drf_orjson_renderer.renderers import ORJSONRenderer  # the shipped renderer (settings)

    phases.wrap(ORJSONRenderer, "render", "rendering")
    from prometheus_client import metrics

    phases.wrap(metrics.MetricWrapperBase, "labels", "metrics")
    phases.wrap(metrics.Counter, "inc", "metrics")
    phases.wrap(metrics.Histogram, "observe", "metrics")
    try:
        import tenants.http.throttling as throttling

        phases.wrap(throttling, "_count", "throttle (Redis)")
        # A token's count: sent before the opening round trip, read after it.
        phases.wrap(throttling.TenantCountInFlight, "__init__", "throttle (Redis)")
        phases.wrap(throttling.TenantCountInFlight, "result", "throttle (Redis)")
    except ImportError:  # the floor has no per-tenant throttle
        pass
    try:
        import platform_ops.request_log as request_log

        phases.wrap(request_log, "write_line", AFTER_RESPONSE)
    except (ImportError, AttributeError):
        pass

    from tenants.database.backend.base import DatabaseWrapper

    phases.wrap(DatabaseWrapper, "read_commit_answer", COMMIT_ANSWER)

    tenant = Tenant.objects.get(slug="bench-000")
    with tenant_context(tenant):
        user = User.objects.get(username="trader-0000")
        trade = Trade.objects.order_by("-created_at").values_list("id", flat=True)[10]
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access']}")
    scenarios = {
        "list": lambda: client.get("/api/trades/?page_size=50"),
        "detail": lambda: client.get(f"/api/trades/{trade}/"),
        "create": lambda: client.post(
            "/api/trades/",
            {"symbol": "ZZ-BENCH", "side": "buy", "quantity": "1.5", "price": "10.5"},
            content_type="application/json",
        ),  # fmt: skip
        "update": lambda: client.patch(f"/api/trades/{trade}/", {"quantity": "2.5"}, content_type="application/json"),
    }
    if fills_route():
        # One order large enough for every fill of the run (the floor has no orders API: ON and OFF only).
        placed = client.post(
            "/api/orders/",
            {"symbol": "ZZ-FILL", "side": "buy", "order_type": "market", "quantity": "1000000000"},
            content_type="application/json",
        )  # fmt: skip
        assert placed.status_code == 201, placed.content[:200]
        order = placed.json()["id"]
        scenarios["fill"] = lambda: client.post(
            f"/api/orders/{order}/fills/", {"quantity": "1", "price": "10.5"}, content_type="application/json"
        )
    report: dict[str, dict[str, float]] = {}
    with connection.execute_wrapper(phases.query):
        for name, call in scenarios.items():
            samples: dict[str, list[float]] = defaultdict(list)
            for i in range(args.requests + 20):
                if i == 20:
                    backend = connection.connection.info.backend_pid
                    app_cpu, db_cpu = time.process_time_ns(), backend_cpu_ns(backend)
                phases.current = defaultdict(float)
                t0 = time.perf_counter()
                response = call()
                total = time.perf_counter() - t0
                assert response.status_code in (200, 201), response.content[:200]
                if i < 20:
                    continue  # warm-up
                measured = dict(phases.current)
                measured["other (Django, DRF, middleware)"] = total - sum(measured.values())
                measured["total"] = total - sum(measured.get(phase, 0.0) for phase in NOT_WAITED_FOR)
                for phase, seconds in measured.items():
                    samples[phase].append(seconds * 1e6)
            report[name] = {phase: sorted(v)[len(v) // 2] for phase, v in samples.items()}
            report[name][APP_CPU] = (time.process_time_ns() - app_cpu) / 1e3 / args.requests
            db_cpu_after = backend_cpu_ns(backend) if connection.connection.info.backend_pid == backend else None
            if db_cpu is not None and db_cpu_after is not None:
                report[name][DB_CPU] = (db_cpu_after - db_cpu) / 1e3 / args.requests
    for name, call in scenarios.items():
        # Round trips of one more request, from libpq's trace (tests/support/roundtrips.py).
        with count_round_trips(connection) as trips:
            call()
        report[name]["round trips"] = trips.count
    if args.json:
        print(json.dumps(report))
        return
    last = ("total", "round trips", APP_CPU, DB_CPU)
    phases_seen = sorted({p for r in report.values() for p in r if p not in last})
    phases_seen += list(last)
    print(f"median microseconds per request, {args.requests} requests, settings {args.settings}, db {args.db}\n")
    print("| phase | " + " | ".join(report) + " |")
    print("|---|" + "---|" * len(report))
    for phase in phases_seen:
        print(f"| {phase} | " + " | ".join(f"{report[s].get(phase, 0):.0f}" for s in report) + " |")


if __name__ == "__main__":
    main()
