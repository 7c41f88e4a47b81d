"""Django's cache on Redis is namespaced by tenant (tenants.cache_keys)."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.core.cache import cache, caches

from tenants.cache_keys import tenant_cache_key
from tenants.context import tenant_context

A = uuid.UUID("aaaaaaaa-0000-0000-0000-000000000001")
B = uuid.UUID("bbbbbbbb-0000-0000-0000-000000000002")


def test_the_cache_is_the_shared_redis_with_the_tenant_key_function():
    backend = caches["default"]
    assert backend.__class__.__name__ == "RedisCache"
    assert backend.key_func is tenant_cache_key
    assert cache.set("ping", "pong") is None and cache.get("ping") == "pong"


@pytest.mark.django_db
def test_a_value_cached_for_tenant_a_is_not_read_as_tenant_bs():
    with tenant_context(A):
        cache.set("portfolio:summary", "A's numbers")
    with tenant_context(B):
        assert cache.get("portfolio:summary") is None
        cache.set("portfolio:summary", "B's numbers")
    with tenant_context(A):
        assert cache.get("portfolio:summary") == "A's numbers"
    with tenant_context(B):
        assert cache.get("portfolio:summary") == "B's numbers"
    # Outside any tenant: the platform's own namespace, neither tenant's.
    assert cache.get("portfolio:summary") is None


@pytest.mark.django_db
def test_keys_name_the_tenant_and_no_key_a_tenant_chooses_reaches_another_namespace():
    backend = caches["default"]
    with tenant_context(A):
        key_a = backend.make_key("x")
        forged = backend.make_key(f"tenant:{B}:x")  # a tenant choosing a key that spells B's
    with tenant_context(B):
        key_b = backend.make_key("x")
    platform = backend.make_key("x")
    assert f":tenant:{A}:x" in key_a and f":tenant:{B}:x" in key_b and ":platform:x" in platform
    assert len({key_a, key_b, platform, forged}) == 4
    assert forged != key_b


@pytest.mark.django_db
def test_two_tenants_caching_the_same_key_at_once_each_read_their_own():
    """Threads (each its own connection and context) write and read one logical key 200 times."""
    errors: list[str] = []
    start = threading.Barrier(2)

    def churn(tenant: uuid.UUID) -> None:
        try:
            start.wait(timeout=10)
            for i in range(200):
                with tenant_context(tenant):
                    cache.set("latest-price", f"{tenant}:{i}")
                    got = cache.get("latest-price")
                    if got != f"{tenant}:{i}":
                        errors.append(f"{tenant} read {got!r} after writing {i}")
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=churn, args=(t,)) for t in (A, B)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with tenant_context(A):
        assert cache.get("latest-price") == f"{A}:199"
    with tenant_context(B):
        assert cache.get("latest-price") == f"{B}:199"


@pytest.mark.django_db
def test_redis_away_is_a_503_with_retry_after_not_a_500(client_a, settings):
    from tests.support.scratch import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": dead}}
    response = client_a.get("/api/trades/")
    assert response.status_code == 503
    assert response["Retry-After"] and "rate-limit store" in response.json()["detail"]
