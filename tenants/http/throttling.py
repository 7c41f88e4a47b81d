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

A bearer token's tenant is counted while the database's opening round trip
is under way (TenantCountInFlight, sent by tenants.http.middleware before it
waits for PostgreSQL): one wait instead of two. So every request of a
verified token counts, including one refused before its view (an ended
session, a role without the right); an API key's request counts once the
database has checked the key, as DRF's throttles always did.

Every counted answer tells the client where it stands, in the IETF draft's
`RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset` (seconds until
the window ends) headers. They are read from the very counter value the INCR
returned, so they are exact and cost no extra round trip: the throttle leaves
its `Window` on the request and RateLimitHeadersMiddleware writes it out.
"""

from __future__ import annotations

import functools
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from tenants.cache_keys import scoped_cache_key

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


@dataclass(frozen=True)
class Window:
    """One request counted: the limit, the count the counter returned, seconds left in the window."""

    limit: int
    used: int
    reset_after: float

    @property
    def allowed(self) -> bool:
        return self.used <= self.limit

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.limit - self.used)),
            "RateLimit-Reset": str(max(1, math.ceil(self.reset_after))),
        }


def count(key: str, rate: str | None) -> Window | None:
    """Count one request against `key` at `rate`; None when the rate is unlimited."""
    limit = parse_rate(rate)
    if limit is None:
        return None
    allowed, period = limit
    now = time.time()
    window = int(now // period)
    used = _count(f"{key}:{window}", timeout=period + 1)
    return Window(limit=allowed, used=used, reset_after=(window + 1) * period - now)


@dataclass(frozen=True)
class Counted:
    """A request already counted against its tenant, before the tier (hence the limit) was known."""

    tenant_id: uuid.UUID
    period: int
    used: int
    reset_after: float

    def window(self, rate: str | None) -> Window | None:
        """The Window at the tenant's rate, if that rate is per this period (else None: count anew)."""
        limit = parse_rate(rate)
        if limit is None or limit[1] != self.period:
            return None
        return Window(limit=limit[0], used=self.used, reset_after=self.reset_after)


class TenantCountInFlight:
    """The tenant's counter INCR sent to Redis, its answer read later.

    The tenant throttle's round trip to Redis used to follow the database's
    opening round trip (the tier, hence the rate, is in the tenant row). The
    counter's key does not depend on the tier when every tier's rate is per
    the same period (settings TENANT_RATE_LIMITS: all per minute), so the
    tenant middleware sends the INCR first, then waits for PostgreSQL, then
    reads Redis's answer: one wait instead of two (tenants.http.middleware).
    The same MULTI/INCRBY/EXPIRE/EXEC on the same key as `_count` under
    `tenant_context`, so the count stays one atomic counter across workers.

    Only for a tenant the request has proven (a verified token's claim): an
    API key names its tenant in plain text, and counting before the database
    has checked the key would let anyone spend another tenant's budget.
    """

    def __init__(self, tenant_id: uuid.UUID, period: int) -> None:
        cache = caches[DEFAULT_CACHE_ALIAS]
        now = time.time()
        window = int(now // period)
        counter = f"{TenantTierThrottle.prefix}:{tenant_id}:{window}"
        key = scoped_cache_key(counter, cache.key_prefix, cache.version, tenant_id)
        cache.validate_key(key)
        self.tenant_id, self.period, self.reset_after = tenant_id, period, (window + 1) * period - now
        self._sent: CounterSent | None = CounterSent(cast(RedisCache, cache), key, timeout=period + 1)

    @classmethod
    def start(cls, tenant_id: uuid.UUID) -> TenantCountInFlight | None:
        """Send the tenant's INCR now, or None when it cannot be sent before the tier is known
        (tiers counted over different periods, another cache than Redis) or Redis is away:
        the throttle then counts as before, and answers for Redis itself."""
        period = shared_tenant_period()
        if period is None or not isinstance(caches[DEFAULT_CACHE_ALIAS], RedisCache):
            return None
        try:
            return cls(tenant_id, period)
        except RedisError:
            return None

    def result(self) -> Counted | None:
        """Redis's answer (the counter's new value); None if it could not be read (the throttle counts anew)."""
        sent, self._sent = self._sent, None
        if sent is None:
            return None
        try:
            used = sent.used()
        except RedisError:
            return None
        return Counted(self.tenant_id, self.period, used, self.reset_after)

    def abandon(self) -> None:
        """An answer that will not be read: the connection cannot be reused."""
        sent, self._sent = self._sent, None
        if sent is not None:
            sent.abandon()


class CounterSent:
    """MULTI / INCRBY / EXPIRE / EXEC of one counter, sent to Redis at once; `used()` reads the answer.

    Sent on a connection of the pool Django's cache writes through. Not
    cache.get_client(): that builds a redis.Redis client per call (a dict of a
    few hundred response callbacks, 60-100 us here). A dead pooled connection
    is replaced by the pool before the commands go out.
    """

    def __init__(self, cache: RedisCache, key: str, timeout: int) -> None:
        self._pool = cache._cache._get_connection_pool(write=True)  # type: ignore[attr-defined]
        self._connection = self._pool.get_connection()
        try:
            self._connection.send_packed_command(
                self._connection.pack_commands([("MULTI",), ("INCRBY", key, 1), ("EXPIRE", key, timeout), ("EXEC",)])
            )
        except BaseException:
            self.abandon()
            raise

    def used(self) -> int:
        """The counter's new value; a RedisError (the connection dropped) if it cannot be read."""
        try:
            replies = [self._connection.read_response() for _ in range(4)]
        except BaseException:
            self.abandon()
            raise
        self._release()
        return int(replies[-1][0])

    def abandon(self) -> None:
        """An answer that will not be read: the connection cannot be reused."""
        if self._connection is not None:
            self._connection.disconnect()
            self._release()

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        self._pool.release(connection)


@functools.lru_cache(maxsize=8)
def _shared_period(rates: tuple[str | None, ...]) -> int | None:
    periods = {limit[1] for limit in map(parse_rate, rates) if limit is not None}
    return periods.pop() if len(periods) == 1 else None


def shared_tenant_period() -> int | None:
    """The one period every tier's rate is counted over, or None if they differ (or none is limited)."""
    return _shared_period(tuple(settings.TENANT_RATE_LIMITS.values()))


def spend(key: str, rate: str | None) -> float | None:
    """Count one request against `key` at `rate`: None if allowed, else seconds until the window ends."""
    window = count(key, rate)
    return None if window is None or window.allowed else window.reset_after


def _count(counter: str, timeout: int) -> int:
    """Add one to `counter` and return the new value, atomically across processes."""
    cache = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(cache, RedisCache):
        # Django's RedisCache.incr is EXISTS then INCR (two round trips, and a
        # key that expires in between would live on without a TTL): one
        # transaction does both steps at once.
        return CounterSent(cache, cache.make_and_validate_key(counter), timeout).used()
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
        window = self.counted(request) or count(f"{self.prefix}:{key}", self.rate(request))
        if window is None:
            return True
        # On the Django request, where RateLimitHeadersMiddleware finds it.
        request._request.rate_limit_window = window  # type: ignore[attr-defined]
        self.retry_after = None if window.allowed else window.reset_after
        return window.allowed

    def wait(self) -> float | None:
        return self.retry_after

    def counted(self, request: Request) -> Window | None:
        """The window of a count made before the view (TenantCountInFlight), if it is this one's."""
        return None


class TenantTierThrottle(FixedWindowThrottle):
    """The tenant's requests, at its subscription tier's rate."""

    prefix = "throttle:tenant"

    def key(self, request: Request) -> str | None:
        tenant = getattr(request, "tenant", None)
        return str(tenant.pk) if tenant is not None else None

    def rate(self, request: Request) -> str | None:
        return settings.TENANT_RATE_LIMITS.get(request.tenant.subscription_tier)

    def counted(self, request: Request) -> Window | None:
        counted: Counted | None = getattr(request._request, "tenant_counted", None)
        if counted is None or counted.tenant_id != request.tenant.pk:
            return None
        return counted.window(self.rate(request))


class ApiKeyThrottle(FixedWindowThrottle):
    """A request through an API key counts against the key as well as its tenant (API_KEY_RATE_LIMIT)."""

    prefix = "throttle:api-key"

    def key(self, request: Request) -> str | None:
        api_key = getattr(request, "api_key", None)
        return str(api_key.pk) if api_key is not None else None

    def rate(self, request: Request) -> str | None:
        return settings.API_KEY_RATE_LIMIT


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


class RateLimitHeadersMiddleware:
    """Adds the RateLimit-* headers of the request's counted window to its answer (429s included)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        window: Window | None = getattr(request, "rate_limit_window", None)
        if window is not None:
            for name, value in window.headers().items():
                response[name] = value
        return response
