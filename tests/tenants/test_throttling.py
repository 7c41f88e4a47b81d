"""Per-tenant rate limits by subscription tier, and the login limit per address."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from tenants.http.throttling import parse_rate
from tenants.models import Tenant
from tests.support.clients import PASSWORD, bearer_client
from tests.support.factories import TenantFactory, UserFactory


@pytest.fixture
def low_limits(settings):
    settings.TENANT_RATE_LIMITS = {"free": "3/min", "starter": "5/min", "pro": "none", "enterprise": None}
    settings.LOGIN_RATE_LIMIT = "4/min"


def client_of_tier(tier: str, slug: str):
    tenant = TenantFactory(slug=slug, subscription_tier=tier)
    return bearer_client(UserFactory(tenant=tenant, username=f"u-{slug}"))


@pytest.mark.django_db
def test_a_tenant_over_its_tier_rate_gets_429_with_retry_after(low_limits):
    free = client_of_tier(Tenant.Tier.FREE, "small")
    assert [free.get("/api/trades/").status_code for _ in range(3)] == [200, 200, 200]
    refused = free.get("/api/trades/")
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert "throttled" in refused.json()["detail"].lower()
    assert 0 < int(refused["Retry-After"]) <= 60


@pytest.mark.django_db
def test_the_limit_is_per_tenant_not_per_user_and_other_tenants_are_unaffected(low_limits):
    tenant = TenantFactory(slug="small", subscription_tier=Tenant.Tier.FREE)
    first = bearer_client(UserFactory(tenant=tenant, username="one"))
    second = bearer_client(UserFactory(tenant=tenant, username="two"))
    other = client_of_tier(Tenant.Tier.FREE, "neighbour")
    assert [first.get("/api/trades/").status_code for _ in range(3)] == [200] * 3
    assert second.get("/api/trades/").status_code == 429  # same tenant's budget
    assert other.get("/api/trades/").status_code == 200  # not starved


@pytest.mark.django_db
def test_rates_follow_the_tier_and_none_means_unlimited(low_limits):
    starter = client_of_tier(Tenant.Tier.STARTER, "mid")
    assert [starter.get("/api/trades/").status_code for _ in range(6)] == [200] * 5 + [429]
    pro = client_of_tier(Tenant.Tier.PRO, "big")
    assert {pro.get("/api/trades/").status_code for _ in range(20)} == {200}


@pytest.mark.django_db
def test_throttled_writes_write_nothing(low_limits):
    free = client_of_tier(Tenant.Tier.FREE, "small")
    body = {"symbol": "AAPL", "side": "buy", "quantity": "1", "price": "100"}
    codes = [free.post("/api/trades/", body, format="json").status_code for _ in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    assert free.get("/api/trades/").status_code == 429
    # the three that were allowed are there, and only those
    from tenants.context import tenant_context
    from trading.models import Trade

    with tenant_context(Tenant.objects.get(slug="small")):
        assert Trade.objects.count() == 3


@pytest.mark.django_db
def test_login_attempts_are_limited_per_address(low_limits, user_a, client):
    wrong = {"tenant": "acme", "username": "alice", "password": "wrong"}
    codes = [client.post("/api/auth/token/", wrong, content_type="application/json").status_code for _ in range(4)]
    assert codes == [401] * 4
    right = {"tenant": "acme", "username": "alice", "password": PASSWORD}
    refused = client.post("/api/auth/token/", right, content_type="application/json")
    assert refused.status_code == 429 and "Retry-After" in refused


def test_parse_rate():
    assert parse_rate("1200/min") == (1200, 60)
    assert parse_rate("10/s") == (10, 1)
    assert parse_rate("5/hour") == (5, 3600)
    assert parse_rate("none") is None and parse_rate(None) is None
    with pytest.raises(ImproperlyConfigured):
        parse_rate("lots")
