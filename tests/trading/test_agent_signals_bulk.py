"""POST /api/agent-signals/bulk/: validated as a whole, saved in one statement, or not at all."""

from __future__ import annotations

import pytest

from tenants.context import tenant_context
from trading.models import AgentSignal

URL = "/api/agent-signals/bulk/"


def signal(i: int, **overrides) -> dict:
    return {"agent_name": "momentum-v2", "symbol": "aapl", "signal": "buy", "confidence": "0.5", **overrides} | (
        {"rationale": f"burst {i}"}
    )


@pytest.mark.django_db
def test_a_burst_is_saved_in_the_callers_tenant(client_a, tenant_a, user_a, tenant_b):
    body = [signal(i) for i in range(50)]
    response = client_a.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["count"] == 50
    rows = response.json()["results"]
    assert {r["tenant_id"] for r in rows} == {str(tenant_a.pk)}
    assert {r["user"] for r in rows} == {str(user_a.pk)}
    assert {r["symbol"] for r in rows} == {"AAPL"}  # the single-row serializer's rules hold
    with tenant_context(tenant_a):
        assert AgentSignal.objects.count() == 50
    with tenant_context(tenant_b):
        assert AgentSignal.objects.count() == 0


@pytest.mark.django_db
def test_one_bad_item_fails_the_whole_request_and_names_the_bad_items(client_a, tenant_a):
    body = [signal(0), signal(1, confidence="1.5"), signal(2), signal(3, signal="panic", tenant_id="x")]
    response = client_a.post(URL, body, format="json")
    assert response.status_code == 400
    payload = response.json()
    assert set(payload["errors"]) == {"1", "3"}
    assert "confidence" in payload["errors"]["1"] and "signal" in payload["errors"]["3"]
    assert "items 1, 3" in payload["detail"] and "none was saved" in payload["detail"]
    with tenant_context(tenant_a):
        assert AgentSignal.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("body", [[], {"agent_name": "x"}, "signals", [1, 2], None])
def test_a_body_that_is_not_a_list_of_signals_is_a_400(client_a, body):
    response = client_a.post(URL, body, format="json")
    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.mark.django_db
def test_more_than_the_maximum_is_refused_whole(client_a, tenant_a, settings):
    settings.AGENT_SIGNALS_BULK_MAX = 5
    response = client_a.post(URL, [signal(i) for i in range(6)], format="json")
    assert response.status_code == 400
    assert "between 1 and 5" in response.json()["detail"]
    with tenant_context(tenant_a):
        assert AgentSignal.objects.count() == 0


@pytest.mark.django_db
def test_bulk_needs_a_token(client):
    assert client.post(URL, [signal(0)], content_type="application/json").status_code == 401


@pytest.mark.django_db
def test_the_bulk_route_is_in_the_openapi_document(client):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/agent-signals/bulk/"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["type"] == "array"
    assert {"201", "400"} <= set(operation["responses"])
