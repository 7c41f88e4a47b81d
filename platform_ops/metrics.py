"""Prometheus metrics: what they count, and the `/metrics` endpoint.

Labels have bounded cardinality by construction: a route is the URL
resolver's pattern (never the raw path), a status is an HTTP code, a reason
is one of REFUSAL_REASONS, a tier is one of Tenant.Tier. No label ever holds
a tenant id, a user id or anything a client chose.

Multi-process servers: under gunicorn, gunicorn.conf.py sets
PROMETHEUS_MULTIPROC_DIR before the workers start, prometheus-client then
keeps every worker's values in files there, and `/metrics` sums them, so the
counts are right whichever worker answers the scrape. Without it (manage.py,
tests, runserver) the process's own registry is served.

`/metrics` answers only `Authorization: Bearer <METRICS_TOKEN>` (compared in
constant time); anything else, or an unset METRICS_TOKEN, is 401.
"""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from tenants.http.middleware import RefusalReason

PREFIX = "alphapulse"

REQUESTS = Counter(
    f"{PREFIX}_http_requests", "HTTP requests answered, by route and status.", ["method", "route", "status"]
)
LATENCY = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time from the first middleware to the response, by route.",
    ["method", "route"],
    buckets=(0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REFUSALS = Counter(
    f"{PREFIX}_refusals",
    "Requests refused before the view: 401 by kind, 403 suspended/inactive, 429 by tier.",
    ["status", "reason", "tier"],
)
RLS_VIOLATIONS = Counter(
    f"{PREFIX}_rls_violations", "Statements PostgreSQL refused for row-level security or privileges (SQLSTATE 42501)."
)
TENANT_CONTEXT_ERRORS = Counter(
    f"{PREFIX}_tenant_context_errors",
    "Tenant data touched without (or against) its tenant context.",
    ["kind"],
)
DATABASE_ERRORS = Counter(
    f"{PREFIX}_database_errors",
    "Database errors that reached Django's handler, by SQLSTATE class.",
    ["sqlstate_class"],
)
UNAVAILABLE = Counter(f"{PREFIX}_http_503", "503 answers: database away or a query cut off by a timeout.", ["route"])

# The middleware's refusal codes (each refusal carries one), then the ones this app tells apart itself.
REFUSAL_REASONS = (
    *(reason.value for reason in RefusalReason),
    "tenant_rate_limit",
    "login_rate_limit",
    "login_failed",
    "other",
)


def registry() -> CollectorRegistry | None:
    """The registry to expose: every worker's values in multi-process mode, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        return collected
    return None


def authorized(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme == "Bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not authorized(request):
        response = HttpResponse('{"detail": "Send Authorization: Bearer <METRICS_TOKEN>."}', status=401)
        response["Content-Type"] = "application/json"
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    collected = registry()
    body = generate_latest(collected) if collected is not None else generate_latest()
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
