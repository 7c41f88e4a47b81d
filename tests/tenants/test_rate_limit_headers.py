"""The RateLimit-* headers on every counted answer: read from the very Redis counter the
throttle increments (exact across workers), at no extra round trip to Redis."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from redis.connection import Connection

from tenants.models import Tenant
from tests.support.clients import PASSWORD, bearer_client
from tests.support.factories import TenantFactory, UserFactory


@pytest.fixture
def low_limits(settings):
    settings.TENANT_RATE_LIMITS = {"free": "3/min", "starter": "5/min", "pro": "none", "enterprise": None}
    settings.LOGIN_RATE_LIMIT = "4/min"


def remaining(response) -> int:
    return int(response["RateLimit-Remaining"])


@pytest.mark.django_db
def test_every_answer_says_the_limit_what_remains_and_when_it_resets(low_limits):
    tenant = TenantFactory(slug="small", subscription_tier=Tenant.Tier.FREE)
    client = bearer_client(UserFactory(tenant=tenant, username="u"))
    answers = [client.get("/api/trades/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert {a["RateLimit-Limit"] for a in answers} == {"3"}
    assert [remaining(a) for a in answers] == [2, 1, 0, 0]
    for answer in answers:
        assert 1 <= int(answer["RateLimit-Reset"]) <= 60
    assert int(answers[-1]["Retry-After"]) >= 1


@pytest.mark.django_db
def test_the_count_is_the_tenants_not_the_users(low_limits):
    tenant = TenantFactory(slug="small", subscription_tier=Tenant.Tier.FREE)
    first = bearer_client(UserFactory(tenant=tenant, username="one"))
    second = bearer_client(UserFactory(tenant=tenant, username="two"))
    assert remaining(first.get("/api/trades/")) == 2
    assert remaining(second.get("/api/trades/")) == 1


@pytest.mark.django_db
def test_an_unlimited_tier_sends_no_headers(low_limits):
    tenant = TenantFactory(slug="big", subscription_tier=Tenant.Tier.PRO)
    response = bearer_client(UserFactory(tenant=tenant, username="u")).get("/api/trades/")
    assert response.status_code == 200
    assert "RateLimit-Limit" not in response


@pytest.mark.django_db
def test_logins_carry_the_login_budget(low_limits):
    tenant = TenantFactory(slug="small")
    UserFactory(tenant=tenant, username="u", password=PASSWORD)
    from rest_framework.test import APIClient

    client = APIClient()
    body = {"tenant": "small", "username": "u", "password": PASSWORD}
    answers = [client.post("/api/auth/token/", body, format="json") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert [remaining(a) for a in answers] == [3, 2, 1, 0, 0]
    assert {a["RateLimit-Limit"] for a in answers} == {"4"}


@pytest.mark.django_db
def test_the_headers_cost_no_extra_round_trip_to_redis(low_limits, monkeypatch):
    """One MULTI/INCRBY/EXPIRE/EXEC, sent at once, per counted request, as before the headers: no GET/TTL
    to read them. (Spied on where redis-py puts commands on the wire, whichever call sends them.)"""
    tenant = TenantFactory(slug="small", subscription_tier=Tenant.Tier.FREE)
    client = bearer_client(UserFactory(tenant=tenant, username="u"))
    caches["default"].get("warm-up")  # the connection pool exists before counting
    sends: list[list[str]] = []
    real_send_command = Connection.send_command
    real_pack_commands = Connection.pack_commands

    def send_command(self, *args, **kwargs):
        sends.append([str(args[0])])
        return real_send_command(self, *args, **kwargs)

    def pack_commands(self, commands):
        sends.append([str(command[0]) for command in commands])
        return real_pack_commands(self, commands)

    monkeypatch.setattr(Connection, "send_command", send_command)
    monkeypatch.setattr(Connection, "pack_commands", pack_commands)
    response = client.get("/api/trades/")
    assert response["RateLimit-Remaining"] == "2"
    assert sends == [["MULTI", "INCRBY", "EXPIRE", "EXEC"]]
