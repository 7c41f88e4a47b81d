"""RLS costs no round trip: list, detail, create and update of trades make exactly as
many round trips to PostgreSQL with RLS on as with it off (scenario 1: RLS_ENABLED
false and the app role in rls_bypass_role).

Counted from libpq's protocol trace (tests/support/roundtrips.py), on committed rows and
real transactions: these tests run outside pytest-django's per-test transaction,
so every request sends its own BEGIN and COMMIT, as under gunicorn. Before each
request the connection goes through what Django's request_started does
(`close_if_unusable_or_obsolete`), which the test client skips: a health check
(CONN_HEALTH_CHECKS) would be counted like in production.
"""

from __future__ import annotations

import json
import os
import socket
import uuid

from django.db import connections
from rest_framework.test import APIClient

from tenants.management.commands.rls_bypass import app_role_bypasses, set_app_role_bypass
from tests.support.roundtrips import RoundTrips, count_round_trips
from tests.tenants.conftest import COMMITTED_SYMBOL as SYMBOL


def request(client: APIClient, scenario: str, trade: uuid.UUID):
    if scenario == "list":
        return client.get("/api/trades/?page_size=50"), 200
    if scenario == "detail":
        return client.get(f"/api/trades/{trade}/"), 200
    if scenario == "update":
        return client.patch(f"/api/trades/{trade}/", {"quantity": "2.5"}, format="json"), 200
    body = {"symbol": SYMBOL, "side": "sell", "quantity": "1.5", "price": "12.25"}
    return client.post("/api/trades/", body, format="json"), 201


def trips_of(committed: dict, scenario: str, *, api_key: bool = False) -> RoundTrips:
    client = APIClient()
    if api_key:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {committed['key']}")
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {committed['token']}")
    connection = connections["default"]
    request(client, scenario, committed["trade"])  # warm: the connection is open and reused
    connection.close_if_unusable_or_obsolete()  # Django's request_started, skipped by the test client
    with count_round_trips(connection) as trips:
        response, expected = request(client, scenario, committed["trade"])
    assert response.status_code == expected, response.content
    if scenario == "list":
        assert [row["id"] for row in response.json()["results"]][-1:] == [str(committed["trade"])]
    assert trips.count > 0
    return trips


SCENARIOS = ("list", "detail", "create", "update")


def test_rls_on_and_off_make_the_same_round_trips(committed, django_db_blocker, settings):
    counts: dict[str, dict[str, RoundTrips]] = {"on": {}, "off": {}}
    with django_db_blocker.unblock():
        settings.RLS_ENABLED = True
        assert not app_role_bypasses()
        for scenario in SCENARIOS:
            counts["on"][scenario] = trips_of(committed, scenario)
        settings.RLS_ENABLED = False
        set_app_role_bypass(True)
        try:
            for scenario in SCENARIOS:
                counts["off"][scenario] = trips_of(committed, scenario)
        finally:
            set_app_role_bypass(False)
    shown = json.dumps({v: {s: t.statements() for s, t in by.items()} for v, by in counts.items()}, indent=1)
    on = {s: t.count for s, t in counts["on"].items()}
    off = {s: t.count for s, t in counts["off"].items()}
    print(f"round trips per request: on {on} off {off}")
    assert on == off, shown


def test_an_api_key_request_makes_the_trips_of_a_bearer_token_request(committed, django_db_blocker, settings):
    """The key's row rides the opening round trip as the token's user and session rows do;
    its last use is written at most once per API_KEY_LAST_USED_SECONDS (the warm-up request's)."""
    settings.API_KEY_LAST_USED_SECONDS = 3600
    with django_db_blocker.unblock():
        settings.RLS_ENABLED = True
        bearer = {scenario: trips_of(committed, scenario).count for scenario in ("list", "detail", "create")}
        by_key = {
            scenario: trips_of(committed, scenario, api_key=True).count for scenario in ("list", "detail", "create")
        }
    print(f"round trips per request: bearer {bearer} api key {by_key}")
    assert by_key == bearer == {"list": 3, "detail": 3, "create": 3}


def test_a_tokens_opening_round_trip_is_three_statements(committed, django_db_blocker, settings):
    """BEGIN, SET LOCAL and one statement that reads the tenant, the user and the session together
    (each statement of the pipeline costs CPU in psycopg and in PostgreSQL)."""
    with django_db_blocker.unblock():
        settings.RLS_ENABLED = True
        opening = trips_of(committed, "detail").statements()[0]
    assert [statement.split()[0].upper() for statement in opening] == ["BEGIN", "SET", "SELECT"], opening
    assert opening[2].startswith('SELECT "t"."id"'), opening  # the tenant's row, joined (the trace cuts it short)


def cut_the_socket(connection) -> None:
    """What a database restart or a dropped idle connection leaves: a socket the server no longer answers."""
    fd = connection.connection.pgconn.socket
    with socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def test_a_kept_connection_that_died_is_replaced_within_the_request(committed, django_db_blocker):
    """No health check before each request any more: the first round trip finds the dead
    connection, nothing has run yet, and the request is served on a new one."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {committed['token']}")
    with django_db_blocker.unblock():
        connection = connections["default"]
        assert client.get("/api/trades/").status_code == 200
        old_pid = connection.connection.info.backend_pid
        cut_the_socket(connection)
        response = client.get("/api/trades/")
        assert response.status_code == 200, response.content
        assert str(committed["trade"]) in [row["id"] for row in response.json()["results"]]
        assert connection.connection.info.backend_pid != old_pid
