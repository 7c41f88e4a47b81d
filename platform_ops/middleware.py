"""RequestObservabilityMiddleware: metrics and a structured log line for every request.

Outermost in MIDDLEWARE, so its duration covers every other middleware and a
refusal by any of them is counted. It reads what the request and response
already say: the resolver's route, the status, `request.tenant` (set by
tenants.http.middleware for API requests), and for 401/403/429 the refusal's
reason code: the `refusal_reason` the refusing middleware put on the response
(tenants.http.middleware.RefusalReason), never its English `detail`. The log
line carries the same code. It never changes a response except for adding
`X-Request-ID`.

Exceptions that reach Django's handler (500s) are classified by the
`got_request_exception` receiver: SQLSTATE 42501 (RLS or privileges), tenant
context errors, other database errors by SQLSTATE class.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Callable

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import DatabaseError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from platform_ops import request_log
from platform_ops.metrics import (
    DATABASE_ERRORS,
    LATENCY,
    REFUSALS,
    REQUESTS,
    RLS_VIOLATIONS,
    TENANT_CONTEXT_ERRORS,
    UNAVAILABLE,
)
from platform_ops.request_log import request_id_from
from tenants.context import NoTenantContext
from tenants.models import CrossTenantWrite

NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
UNMATCHED = "<unmatched>"


def route_of(request: HttpRequest) -> str:
    """The URL pattern that matched ('/api/trades/<pk>/'), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is None:  # refused before URL resolution (a middleware answered)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return UNMATCHED
    # DRF's routers write regexes: '^trades/(?P<pk>[^/.]+)/$' reads as 'trades/<pk>/'.
    route = NAMED_GROUP.sub(r"<\1>", match.route)
    return "/" + route.replace("^", "").replace("$", "").replace("\\Z", "")


def reason_of(request: HttpRequest, response: HttpResponse, route: str) -> str:
    status = response.status_code
    given = getattr(response, "refusal_reason", None)
    if given:
        return str(given)
    if status == 429:
        return "tenant_rate_limit" if getattr(request, "tenant", None) is not None else "login_rate_limit"
    if status == 401 and route.startswith("/api/auth/"):
        return "login_failed"
    return "other"


class RequestObservabilityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request_id_from(request.headers.get("X-Request-ID"))
        request.request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        duration = time.perf_counter() - started
        route = route_of(request)
        status = response.status_code
        method = request.method if request.method in KNOWN_METHODS else "other"
        tenant = getattr(request, "tenant", None)
        REQUESTS.labels(method, route, str(status)).inc()
        LATENCY.labels(method, route).observe(duration)
        reason = None
        if status in (401, 403, 429):
            reason = reason_of(request, response, route)
            tier = tenant.subscription_tier if (status == 429 and tenant is not None) else ""
            REFUSALS.labels(str(status), reason, tier).inc()
        elif status == 503:
            UNAVAILABLE.labels(route).inc()
        response["X-Request-ID"] = request_id
        if settings.REQUEST_LOG:
            user = getattr(request, "tenant_user", None)
            fields = {
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(duration * 1000, 3),
                "tenant_id": str(tenant.pk) if tenant is not None else None,
                "user_id": str(user.pk) if user is not None else None,
                "refusal_reason": reason,
            }
            # Rendered and written when the WSGI server closes the response, i.e. after the
            # body went out (platform_ops.request_log): the line costs the client nothing.
            # Django runs a response's _resource_closers first thing in close(), before
            # request_finished; the test client closes every response it returns.
            response._resource_closers.append(functools.partial(request_log.write_line, **fields))  # type: ignore[attr-defined]
        return response


@receiver(got_request_exception, dispatch_uid="platform_ops.count_request_exception")
def count_request_exception(sender, request=None, **kwargs) -> None:
    exc = sys.exc_info()[1]
    if isinstance(exc, NoTenantContext):
        TENANT_CONTEXT_ERRORS.labels("no_tenant_context").inc()
    elif isinstance(exc, CrossTenantWrite):
        TENANT_CONTEXT_ERRORS.labels("cross_tenant_write").inc()
    elif isinstance(exc, DatabaseError):
        sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
        if sqlstate == "42501":
            RLS_VIOLATIONS.inc()
        DATABASE_ERRORS.labels(sqlstate[:2] or "unknown").inc()
