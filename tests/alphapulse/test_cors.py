"""A browser front-end on another origin (CORS_ALLOWED_ORIGINS, django-cors-headers): its
preflight is answered without a token, its answers carry the CORS headers; an origin not on
the list gets no CORS header at all, so the browser keeps the answer from it."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

ALLOWED = "https://app.example.com"
STRANGER = "https://evil.example.net"


@pytest.fixture(autouse=True)
def allowlist(settings):
    settings.CORS_ALLOWED_ORIGINS = [ALLOWED]


def preflight(origin: str, path: str = "/api/trades/", method: str = "POST"):
    return APIClient().options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )


def test_a_preflight_from_an_allowed_origin_is_answered_without_a_token():
    response = preflight(ALLOWED)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in response["Access-Control-Allow-Methods"]
    allowed_headers = response["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers


def test_a_preflight_from_another_origin_grants_nothing():
    response = preflight(STRANGER)
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Methods" not in response


@pytest.mark.django_db
def test_answers_to_an_allowed_origin_carry_the_cors_headers(client_a):
    response = client_a.get("/api/trades/", HTTP_ORIGIN=ALLOWED)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    exposed = response["Access-Control-Expose-Headers"].lower()
    assert "ratelimit-remaining" in exposed and "retry-after" in exposed


@pytest.mark.django_db
def test_answers_to_another_origin_carry_none(client_a):
    response = client_a.get("/api/trades/", HTTP_ORIGIN=STRANGER)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_a_refusal_still_tells_an_allowed_origin_why():
    """A 401 the browser can read, rather than an opaque network error."""
    response = APIClient().get("/api/trades/", HTTP_ORIGIN=ALLOWED)
    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == ALLOWED
