"""The tenant's rate-limit count overlaps the database's opening round trip
(tenants.http.throttling.TenantCountInFlight): its INCR goes to Redis before the
request waits for PostgreSQL, and its answer is read after. The count stays the one
atomic counter every worker and every kind of credential spends from."""

from __future__ import annotations

import pytest
from redis.connection import Connection

import tenants.context
from tenants.api_keys import create_api_key
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.support.clients import bearer_client
from tests.support.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.citus

COUNT = "redis sent MULTI INCRBY EXPIRE EXEC"


@pytest.fixture
def low_limits(settings):
    settings.TENANT_RATE_LIMITS = {"free": "4/min", "starter": "5/min", "pro": "none", "enterprise": None}
    settings.API_KEY_RATE_LIMIT = "none"


@pytest.fixture
def events(monkeypatch) -> list[str]:
    """What happened, in order: the Redis counter sent and read, the database's opening round trip."""
    seen: list[str] = []
    real_open = tenants.context.open_tenant_transaction
    real_pack_commands = Connection.pack_commands
    real_read_response = Connection.read_response

    def open_tenant_transaction(*args, **kwargs):
        rows = real_open(*args, **kwargs)
        seen.append("database answered")
        return rows

    def pack_commands(self, commands):
        seen.append("redis sent " + " ".join(str(command[0]) for command in commands))
        return real_pack_commands(self, commands)

    def read_response(self, *args, **kwargs):
        response = real_read_response(self, *args, **kwargs)
        if not seen or seen[-1] != "redis read":
            seen.append("redis read")
        return response

    monkeypatch.setattr(tenants.context, "open_tenant_transaction", open_tenant_transaction)
    monkeypatch.setattr(Connection, "pack_commands", pack_commands)
    monkeypatch.setattr(Connection, "read_response", read_response)
    return seen


def key_client(user):
    from rest_framework.test import APIClient

    with tenant_context(user.tenant_id):
        _, key = create_api_key(user, name="bot", scopes=["read"], expires_at=None, actor="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.mark.django_db
def test_a_tokens_count_is_sent_before_the_database_is_waited_for(low_limits, events):
    tenant = TenantFactory(slug="small", subscription_tier=Tenant.Tier.FREE)
    client = bearer_client(UserFactory(tenant=tenant, username="u"))
    events.clear()
    assert client.get("/api/trades/").status_code == 200
    assert events.count(COUNT) == 1
    sent, answered = events.index(COUNT), events.index("database answered")
    assert sent < answered and "redis read" in events[answered:]


@pytest.mark.django_db
def test_an_api_keys_tenant_is_counted_only_once_the_database_has_checked_the_key(low_limits, events):
    """A key names its tenant in plain text: counting before the key is checked would let
    anyone spend another tenant's budget with a made-up key."""
    tenant = TenantFactory(slug="small", subscription_tier=Tenant.Tier.FREE)
    client = key_client(UserFactory(tenant=tenant, username="u", role="admin"))
    events.clear()
    assert client.get("/api/trades/").status_code == 200
    assert events.index("database answered") < events.index(COUNT)


@pytest.mark.django_db
def test_a_made_up_key_spends_nothing_of_the_tenants_budget(low_limits):
    tenant = TenantFactory(slug="small", subscription_tier=Tenant.Tier.FREE)
    user = UserFactory(tenant=tenant, username="u", role="admin")
    forged = bearer_client(user)
    forged.credentials(HTTP_AUTHORIZATION=f"Api-Key ap_{tenant.pk.hex}_{'0' * 12}_{'x' * 43}")
    assert [forged.get("/api/trades/").status_code for _ in range(6)] == [401] * 6
    assert bearer_client(user).get("/api/trades/")["RateLimit-Remaining"] == "3"


@pytest.mark.django_db
def test_tokens_and_keys_spend_one_counter(low_limits):
    tenant = TenantFactory(slug="small", subscription_tier=Tenant.Tier.FREE)
    user = UserFactory(tenant=tenant, username="u", role="admin")
    by_token, by_key = bearer_client(user), key_client(user)
    codes = [client.get("/api/trades/").status_code for client in (by_token, by_key, by_token, by_key, by_token)]
    assert codes == [200, 200, 200, 200, 429]


@pytest.mark.django_db
def test_tiers_over_different_periods_are_counted_after_the_database_and_exactly(settings, events):
    """The counter's key holds the window, which depends on the tier's period: with periods that
    differ the tier must be read first, as before."""
    settings.TENANT_RATE_LIMITS = {"free": "3/min", "starter": "50/s", "pro": "none", "enterprise": None}
    tenant = TenantFactory(slug="small", subscription_tier=Tenant.Tier.FREE)
    client = bearer_client(UserFactory(tenant=tenant, username="u"))
    events.clear()
    codes = [client.get("/api/trades/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert events.index("database answered") < events.index(COUNT)
