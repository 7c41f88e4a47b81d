"""/metrics: bearer-token only, parsed with prometheus-client's own text parser,
and counters that move with the traffic that should move them. The last test
serves the app with gunicorn (2 workers, multi-process mode) and checks that
the counts add up across workers."""

from __future__ import annotations

import sys

import httpx
import pytest
from django.core.signals import got_request_exception
from django.db import DatabaseError, connections, transaction
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from tests.support.load import login
from tests.support.scratch import DEMO_PASSWORD, FAST_HASHER, demo_database, gunicorn, manage

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

TOKEN = "metrics-token-for-tests"


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> dict:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    return samples(response.content.decode())


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer ", TOKEN])
def test_metrics_need_the_bearer_token(client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert b"alphapulse_http_requests" not in response.content


def test_an_unset_token_refuses_everyone(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_requests_and_latency_are_counted_by_route_pattern_and_status(client, client_a, as_tenant, tenant_a, user_a):
    from tests.support.factories import TradeFactory

    with as_tenant(tenant_a):
        trade = TradeFactory(tenant=tenant_a, user=user_a)
    before = scrape(client)
    assert client_a.get("/api/trades/").status_code == 200
    assert client_a.get(f"/api/trades/{trade.pk}/").status_code == 200
    assert client_a.get("/api/trades/00000000-0000-0000-0000-000000000000/").status_code == 404
    after = scrape(client)
    detail = {"method": "GET", "route": "/api/trades/<pk>/"}
    assert (
        value(after, "alphapulse_http_requests_total", status="200", **detail)
        - value(before, "alphapulse_http_requests_total", status="200", **detail)
        == 1
    )
    assert (
        value(after, "alphapulse_http_requests_total", status="404", **detail)
        - value(before, "alphapulse_http_requests_total", status="404", **detail)
        == 1
    )
    listing = {"method": "GET", "route": "/api/trades/"}
    assert (
        value(after, "alphapulse_http_request_duration_seconds_count", **listing)
        - value(before, "alphapulse_http_request_duration_seconds_count", **listing)
        == 1
    )
    # No raw path (and so no id) ever becomes a label.
    assert not any(str(trade.pk) in str(key) for key in after)


def test_refusals_are_counted_by_reason(client):
    from rest_framework.test import APIClient

    before = scrape(client)
    assert APIClient().get("/api/trades/").status_code == 401
    assert APIClient(HTTP_AUTHORIZATION="Bearer not-a-jwt").get("/api/trades/").status_code == 401
    assert APIClient(HTTP_AUTHORIZATION="Token abc").get("/api/trades/").status_code == 401
    after = scrape(client)
    for reason in ("no_credentials", "token_rejected", "bad_auth_header"):
        labels = {"status": "401", "reason": reason, "tier": ""}
        delta = value(after, "alphapulse_refusals_total", **labels) - value(
            before, "alphapulse_refusals_total", **labels
        )
        assert delta == 1, reason


def test_a_429_is_counted_by_tier(client, client_a, tenant_a, settings):
    settings.TENANT_RATE_LIMITS = {**settings.TENANT_RATE_LIMITS, tenant_a.subscription_tier: "1/min"}
    before = scrape(client)
    statuses = [client_a.get("/api/trades/").status_code for _ in range(3)]
    assert 429 in statuses
    after = scrape(client)
    labels = {"status": "429", "reason": "tenant_rate_limit", "tier": tenant_a.subscription_tier}
    assert value(after, "alphapulse_refusals_total", **labels) - value(
        before, "alphapulse_refusals_total", **labels
    ) == statuses.count(429)


def test_an_inactive_user_is_counted(client, tenant_b, user_b):
    from tenants.context import tenant_context
    from tenants.models import User
    from tests.support.clients import bearer_client

    inactive_client = bearer_client(user_b)
    with tenant_context(tenant_b):
        User.objects.filter(pk=user_b.pk).update(is_active=False)
    before = scrape(client)
    assert inactive_client.get("/api/trades/").status_code == 403
    after = scrape(client)
    labels = {"status": "403", "reason": "user_inactive", "tier": ""}
    assert (
        value(after, "alphapulse_refusals_total", **labels) - value(before, "alphapulse_refusals_total", **labels) == 1
    )


def test_an_rls_violation_is_counted_as_42501(client):
    before = scrape(client)
    try:
        with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
            cursor.execute("SELECT * FROM platform_audit")  # the app role holds nothing on it: 42501
    except DatabaseError:
        got_request_exception.send(sender=None, request=None, exc_info=sys.exc_info())
    after = scrape(client)
    assert value(after, "alphapulse_rls_violations_total") - value(before, "alphapulse_rls_violations_total") == 1
    key = "alphapulse_database_errors_total"
    assert value(after, key, sqlstate_class="42") - value(before, key, sqlstate_class="42") == 1


def test_a_tenant_context_error_is_counted(client):
    from tenants.context import NoTenantContext

    before = scrape(client)
    try:
        raise NoTenantContext()
    except NoTenantContext:
        got_request_exception.send(sender=None, request=None)
    after = scrape(client)
    key, labels = "alphapulse_tenant_context_errors_total", {"kind": "no_tenant_context"}
    assert value(after, key, **labels) - value(before, key, **labels) == 1


def test_each_request_logs_one_json_line_with_its_ids(client_a, user_a, tenant_a):
    with capture_logs() as logs:
        response = client_a.get("/api/trades/", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    (line,) = [entry for entry in logs if entry["event"] == "request"]
    assert line["request_id"] == "abc-123"
    assert line["tenant_id"] == str(tenant_a.pk) and line["user_id"] == str(user_a.pk)
    assert (line["route"], line["status"], line["method"]) == ("/api/trades/", 200, "GET")
    assert line["duration_ms"] > 0


def test_the_log_line_is_written_when_the_response_is_closed_not_before(rf, settings):
    """The line costs the client nothing: the WSGI server closes the response after sending it."""
    from django.http import JsonResponse

    from platform_ops.middleware import RequestObservabilityMiddleware

    settings.REQUEST_LOG = True
    middleware = RequestObservabilityMiddleware(lambda request: JsonResponse({"status": "ok"}))
    with capture_logs() as logs:
        response = middleware(rf.get("/health", HTTP_X_REQUEST_ID="closed-1"))
        assert [entry for entry in logs if entry["event"] == "request"] == []
        response.close()
    (line,) = [entry for entry in logs if entry["event"] == "request"]
    assert (line["request_id"], line["route"], line["status"]) == ("closed-1", "/health", 200)


def test_a_refusal_logs_and_counts_its_reason_code_not_its_wording(client, monkeypatch):
    from tenants.http import middleware

    # Reworded prose: the code still names the reason.
    monkeypatch.setattr(middleware, "verified_claims", refuse_reworded)
    before = scrape(client)
    with capture_logs() as logs:
        assert client.get("/api/trades/").status_code == 401
    (line,) = [entry for entry in logs if entry["event"] == "request"]
    assert line["refusal_reason"] == "no_credentials"
    labels = {"status": "401", "reason": "no_credentials", "tier": ""}
    key = "alphapulse_refusals_total"
    assert value(scrape(client), key, **labels) - value(before, key, **labels) == 1


def refuse_reworded(request):
    from tenants.http.middleware import RefusalReason, Refused

    raise Refused(401, RefusalReason.NO_CREDENTIALS, "Please log in first.")


def test_a_hostile_request_id_is_replaced(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="x" * 500 + "\n")
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.slow
def test_counts_add_up_across_gunicorn_workers_and_a_suspension_is_counted(django_db_blocker):
    """Sync workers take one connection each: consecutive requests land on either worker,
    so only summed multi-process values give exact deltas scrape after scrape."""
    health = {"method": "GET", "route": "/health", "status": "200"}
    suspended = {"status": "403", "reason": "tenant_suspended", "tier": ""}
    with django_db_blocker.unblock(), demo_database("alphapulse_metrics", trades=10) as db:
        with gunicorn(db, workers=2, METRICS_TOKEN=TOKEN, REQUEST_LOG="false", **FAST_HASHER) as base:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=base) as http:
                assert http.get("/metrics").status_code == 401
                headers = login(base, "acme", "alice", DEMO_PASSWORD)
                for _ in range(5):
                    before = samples(http.get("/metrics", headers=auth).text)
                    for _ in range(10):
                        assert http.get("/health").status_code == 200
                    after = samples(http.get("/metrics", headers=auth).text)
                    assert (
                        value(after, "alphapulse_http_requests_total", **health)
                        - value(before, "alphapulse_http_requests_total", **health)
                        == 10
                    )
                manage(db, "set_tenant_status", "acme", "suspended")
                assert http.get("/api/trades/", headers=headers).status_code == 403
                after = samples(http.get("/metrics", headers=auth).text)
    assert value(after, "alphapulse_refusals_total", **suspended) == 1
