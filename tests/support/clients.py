"""API clients of the tests: a user's password and a client that carries the user's bearer token."""

from __future__ import annotations

from rest_framework.test import APIClient

from tenants.http.auth import tokens_for

PASSWORD = "correct-horse-battery-staple"


def bearer_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access']}")
    return client
