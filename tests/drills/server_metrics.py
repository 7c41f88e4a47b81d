"""The seed's success metrics, computed from the server's own /metrics.

Scrape before and after a drill; the difference is what the drill's traffic
did: error rate (5xx / all API answers), RLS violations (SQLSTATE 42501),
tenant-context errors, and the API's p99 latency, interpolated inside the
histogram bucket the way PromQL's histogram_quantile() does.
"""

from __future__ import annotations

import math
from collections import defaultdict

import httpx
from prometheus_client.parser import text_string_to_metric_families

# The drills' servers get this token (tests/drills/conftest.py FAST).
DRILL_METRICS_TOKEN = "drill-metrics-token"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base: str) -> Samples:
    response = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {DRILL_METRICS_TOKEN}"}, timeout=10)
    response.raise_for_status()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _delta(before: Samples, after: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value - before.get((n, labels), 0.0) for (n, labels), value in after.items() if n == name}


def _api(labels: tuple[tuple[str, str], ...]) -> bool:
    route = dict(labels).get("route", "")
    return route.startswith("/api/") and not route.startswith("/api/auth/")


def histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """q-quantile from cumulative bucket counts {upper bound: count}, as PromQL does."""
    bounds = sorted(buckets)
    total = buckets[math.inf] if math.inf in buckets else 0.0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == math.inf:
                return lower
            return lower + (bound - lower) * (rank - below) / max(buckets[bound] - below, 1e-12)
        lower, below = bound, buckets[bound]
    return lower


def success_metrics(before: Samples, after: Samples) -> dict[str, object]:
    requests = {k: v for k, v in _delta(before, after, "alphapulse_http_requests_total").items() if _api(k)}
    total = sum(requests.values())
    errors = sum(v for k, v in requests.items() if dict(k)["status"].startswith("5"))
    unavailable = sum(v for k, v in requests.items() if dict(k)["status"] == "503")
    buckets: dict[float, float] = defaultdict(float)
    for labels, value in _delta(before, after, "alphapulse_http_request_duration_seconds_bucket").items():
        if _api(labels):
            buckets[float(dict(labels)["le"])] += value
    rls = sum(_delta(before, after, "alphapulse_rls_violations_total").values())
    context = sum(_delta(before, after, "alphapulse_tenant_context_errors_total").values())
    return {
        "api_requests": int(total),
        "error_rate": f"{errors / total:.4%}" if total else "n/a",
        "of_which_503": int(unavailable),
        "rls_violations_42501": int(rls),
        "tenant_context_errors": int(context),
        "p99_ms": round(histogram_quantile(0.99, buckets) * 1000, 1),
    }
