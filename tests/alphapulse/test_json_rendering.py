"""Answers are rendered by orjson (drf-orjson-renderer; settings REST_FRAMEWORK): the same bytes
DRF's own JSON renderer writes, faster, and every answer DRF can build renders, including
field errors keyed by a list position (a dict with integer keys)."""

from __future__ import annotations

import json

from rest_framework.renderers import JSONRenderer

from tests.support.clients import bearer_client


def test_a_list_page_is_orjsons_and_byte_for_byte_what_drf_would_write(client_a):
    response = client_a.get("/api/trades/?page_size=5")
    assert response.status_code == 200
    assert type(response.accepted_renderer).__module__ == "drf_orjson_renderer.renderers"
    assert response.content == JSONRenderer().render(response.data, "application/json", {})


def test_an_error_keyed_by_list_position_is_a_400_not_a_500(user_a):
    response = bearer_client(user_a).post("/api/api-keys/", {"name": "bot", "scopes": ["x" * 40]}, format="json")
    assert response.status_code == 400, response.content
    assert json.loads(response.content)["scopes"] == {"0": ["Ensure this field has no more than 32 characters."]}
