"""Per-tenant rate limits, so one tenant cannot starve the rest.

Every authenticated API request counts against its *tenant* (not its user or
IP), with the rate of the tenant's subscription tier (settings
TENANT_RATE_LIMITS, e.g. `pro=1200/min`). Logins count per client address
(LOGIN_RATE_LIMIT), which slows password guessing; the admin's login form
shares that budget (tenants.http.middleware.StaffDatabaseMiddleware). Over the limit: 429 with
`Retry-After` (DRF's Throttled).

Fixed windows with one atomic counter per window in Django's cache, which is
Redis (settings CACHES): `INCR` and `EXPIRE` in one MULTI/EXEC, so every
gunicorn worker and every process counts against the same number and the
limit is exact however many workers serve (tests/tenants/test_rate_limits_shared.py).
O(1) per request, unlike DRF's SimpleRateThrottle, which keeps every
request's timestamp (6,000 of them for an enterprise tenant). The price is
that a client can spend up to two windows' worth across a window boundary.
The counter keys go through the cache's tenant-aware key function
(tenants.cache_keys); another cache backend falls back to `add` + `incr`.
"""

from __future__ import annotations

import functools
import time

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@functools.lru_cache(maxsize=64)  # called on every request with one of a handful of settings
def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """'1200/min' -> (1200, 60); None, '' or 'none' -> no limit."""
    if not rate or rate.lower() == "none":
        return None
    try:
        count, period = rate.split("/")
        return int(count), PERIODS[period.strip()[0].lower()]
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"Bad rate limit {rate!r}: use '<count>/<s|min|hour|day>'.") from exc


def spend(key: str, rate: str | None) -> float | None:
    """Count one request against `key` at `rate`: None if allowed, else seconds until the window ends."""
    limit = parse_rate(rate)
    if limit is None:
        return None
    allowed, period = limit
    now = time.time()
    window = int(now // period)
    used = _count(f"{key}:{window}", timeout=period + 1)
    return None if used <= allowed else (window + 1) * period - now


def _count(counter: str, timeout: int) -> int:
    """Add one to `counter` and return the new value, atomically across processes."""
    cache = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(cache, RedisCache):
        key = cache.make_and_validate_key(counter)
        # Django's RedisCache.incr is EXISTS then INCR (two round trips, and a
        # key that expires in between would live on without a TTL): one
        # transaction does both steps at once.
        client = cache._cache.get_client(key, write=True)  # type: ignore[attr-defined]
        with client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, timeout)
            used, _ = pipe.execute()
        return int(used)
    cache.add(counter, 0, timeout=timeout)
    try:
        return cache.incr(counter)
    except ValueError:  # evicted between add and incr
        cache.set(counter, 1, timeout=timeout)
        return 1


class FixedWindowThrottle(BaseThrottle):
    prefix = "throttle"

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def rate(self, request: Request) -> str | None:
        raise NotImplementedError

    def key(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view) -> bool:
        key = self.key(request)
        if key is None:
            return True
        self.retry_after = spend(f"{self.prefix}:{key}", self.rate(request))
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after


class TenantTierThrottle(FixedWindowThrottle):
    """The tenant's requests, at its subscription tier's rate."""

    prefix = "throttle:tenant"

    def key(self, request: Request) -> str | None:
        tenant = getattr(request, "tenant", None)
        return str(tenant.pk) if tenant is not None else None

    def rate(self, request: Request) -> str | None:
        return settings.TENANT_RATE_LIMITS.get(request.tenant.subscription_tier)


class LoginThrottle(FixedWindowThrottle):
    """Login and refresh attempts per client address (the admin's login counts in the same window)."""

    prefix = "throttle:login"

    @classmethod
    def spend_for(cls, ident: str) -> float | None:
        """Count one attempt from client address `ident`: the admin's login form, outside DRF,
        spends from the same counter that allow_request() uses for the API's login."""
        return spend(f"{cls.prefix}:{ident}", settings.LOGIN_RATE_LIMIT)

    def key(self, request: Request) -> str | None:
        return self.get_ident(request)

    def rate(self, request: Request) -> str | None:
        return settings.LOGIN_RATE_LIMIT
