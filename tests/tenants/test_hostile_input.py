"""Hostile HTTP input: always a JSON 4xx, never a 500, nothing written.

- Deeply nested JSON on login, refresh and every authenticated write (was a
  RecursionError 500 before login).
- Validly signed tokens with odd claim types (exp as a string or 10**30, nbf,
  iat, jti, token_type, user_id, tenant_id as objects or lists) on access
  and refresh (were TypeError / OverflowError 500s), and a header nested a
  thousand levels deep.
- A cursor that decodes but holds no date: `{"cursor": [...]}` like every other
  cursor error (was a bare list).
- A pass over every route with NaN, huge numbers, NUL bytes in bodies and
  query strings, wrong types, odd content types, huge page sizes and bad ids.
- gunicorn's own 400/414/431 answers as `{"detail": ...}` (were HTML), on a
  live server.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from urllib.parse import urlencode

import jwt
import pytest
from rest_framework.test import APIClient

from tenants.http.auth import tokens_for
from tenants.signing_keys import configured_ring
from tests.support.factories import OrderFactory, TradeFactory
from trading.models import Order, Trade

pytestmark = pytest.mark.django_db

DEEP = "[" * 1000 + "]" * 1000
LIST_ROUTES = (
    "/api/trades/",
    "/api/orders/",
    "/api/positions/",
    "/api/portfolio-snapshots/",
    "/api/risk-metrics/",
    "/api/agent-signals/",
)


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def sign(claims: dict, headers: dict | None = None) -> str:
    """Signed as the server signs: its current key, its kid in the header (unless `headers` says otherwise)."""
    key = configured_ring().current
    return jwt.encode(claims, key.signing, algorithm="HS256", headers={"kid": key.kid, **(headers or {})})


def claims_of(token: str) -> dict:
    return jwt.decode(token, configured_ring().current.verifying, algorithms=["HS256"])


# --- deep nesting ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/auth/token/refresh/"])
def test_deeply_nested_json_before_login_is_400(path):
    body = assert_json_error(APIClient().post(path, DEEP, content_type="application/json"), 400)
    assert "nested too deeply" in body["detail"]


def test_deeply_nested_json_on_every_authenticated_write_is_400(client_a, user_a):
    with_rows = {"/api/trades/": TradeFactory(user=user_a), "/api/orders/": OrderFactory(user=user_a)}
    for path in LIST_ROUTES:
        # Nobody writes positions through the API: refused (403) before the body is read.
        expected = 403 if path == "/api/positions/" else 400
        assert_json_error(client_a.post(path, DEEP, content_type="application/json"), expected)
    for path, row in with_rows.items():
        for method in (client_a.patch, client_a.put):
            assert_json_error(method(f"{path}{row.pk}/", DEEP, content_type="application/json"), 400)


def test_nan_and_infinity_are_not_json(client_a):
    for constant in ("NaN", "Infinity", "-Infinity"):
        body = f'{{"symbol": "AAPL", "side": "buy", "quantity": {constant}, "price": 1}}'
        assert_json_error(client_a.post("/api/trades/", body, content_type="application/json"), 400)
    assert not Trade.all_tenants.exists()


# --- odd claims in validly signed tokens ------------------------------------

ODD_VALUES = {
    "exp": ["1796153425", 10**30, -1, 1.5e300, True, {"a": 1}, [1], None],
    "nbf": ["0", 10**30, {"a": 1}, [1]],
    "iat": ["0", 10**30, {"a": 1}, [1]],
    "jti": [{"a": 1}, [1], 12],
    "token_type": [{"a": 1}, ["access"], 1],
    "user_id": [{"a": 1}, ["x"], 10**30],
    "tenant_id": [{"a": 1}, ["x"], 10**30],
}
ODD_CLAIMS = [(claim, value) for claim, values in ODD_VALUES.items() for value in values]


@pytest.mark.parametrize(("claim", "value"), ODD_CLAIMS, ids=[f"{c}={v!r}"[:40] for c, v in ODD_CLAIMS])
def test_odd_claim_in_a_signed_access_token_is_401(user_a, claim, value):
    claims = claims_of(tokens_for(user_a)["access"])
    claims[claim] = value
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {sign(claims)}")
    body = assert_json_error(client.get("/api/trades/"), 401)
    assert body["detail"]


@pytest.mark.parametrize(("claim", "value"), ODD_CLAIMS, ids=[f"{c}={v!r}"[:40] for c, v in ODD_CLAIMS])
def test_odd_claim_in_a_signed_refresh_token_is_401(user_a, claim, value):
    claims = claims_of(tokens_for(user_a)["refresh"])
    claims[claim] = value
    response = APIClient().post("/api/auth/token/refresh/", {"refresh": sign(claims)}, format="json")
    assert_json_error(response, 401)


def test_a_token_header_nested_a_thousand_levels_is_401(user_a):
    """PyJWT parses the header before it checks the signature."""
    header = base64.urlsafe_b64encode(('{"alg": "HS256", "x": ' + DEEP + "}").encode()).rstrip(b"=").decode()
    _, payload, signature = tokens_for(user_a)["access"].split(".")
    forged = f"{header}.{payload}.{signature}"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert_json_error(client.get("/api/trades/"), 401)
    response = APIClient().post("/api/auth/token/refresh/", {"refresh": forged}, format="json")
    assert_json_error(response, 401)


# --- cursor ------------------------------------------------------------------


@pytest.mark.parametrize("position", ["not-a-date", "2026-13-45T99:99:99", "2026-02-30T00:00:00", "\x00"])
def test_a_cursor_that_decodes_but_holds_no_date_is_a_cursor_error(client_a, position):
    cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
    body = assert_json_error(client_a.get("/api/trades/", {"cursor": cursor}), 400)
    assert body == {"cursor": ["Invalid cursor: use the 'next' or 'previous' link as given."]}


# --- every route -----------------------------------------------------------

HOSTILE_BODIES = [
    {"symbol": "A\x00B", "side": "buy", "quantity": 1, "price": 1},
    {"symbol": "AAPL", "side": "buy", "quantity": 10**400, "price": 1},
    {"symbol": "AAPL", "side": "buy", "quantity": "1e999999", "price": "-0"},
    {"symbol": ["AAPL"], "side": {"x": 1}, "quantity": [], "price": None},
    {"symbol": "AAPL", "side": "buy", "quantity": 1, "price": 1, "tenant_id": str(uuid.uuid4()), "id": "x"},
    {"status": "filled", "order_type": "\x00", "limit_price": 1e308, "user": str(uuid.uuid4())},
    {"confidence": 1e-400, "total_value": "NaN", "cash": "Infinity", "taken_at": "99999-01-01"},
    [],
    "string",
    12,
    None,
]
HOSTILE_QUERIES = [
    {"page_size": "10000000000000000000000"},
    {"page_size": "-1"},
    {"page_size": "\x00"},
    {"symbol": "\x00"},
    {"cursor": "\x00"},
    {"cursor": "%%%"},
    {"side": "buy\x00"},
    {"created_at__gte": "not-a-date"},
    {"ordering": "tenant_id"},
]
HOSTILE_IDS = ["not-a-uuid", "00000000-0000-0000-0000-00000000000g", "%00", "1" * 5000, str(uuid.uuid4())]


def no_5xx(response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.content[:300]!r}"
    assert response["Content-Type"].startswith("application/json"), what


def test_hostile_bodies_on_every_write_route_are_4xx_and_write_nothing(client_a, user_a):
    rows = {"/api/trades/": TradeFactory(user=user_a), "/api/orders/": OrderFactory(user=user_a)}
    before = (Trade.all_tenants.count(), Order.all_tenants.count())
    for path in LIST_ROUTES:
        for body in HOSTILE_BODIES:
            no_5xx(client_a.post(path, json.dumps(body), content_type="application/json"), f"POST {path} {body!r}")
    for path, row in rows.items():
        for body in HOSTILE_BODIES:
            no_5xx(
                client_a.patch(f"{path}{row.pk}/", json.dumps(body), content_type="application/json"),
                f"PATCH {path} {body!r}",
            )
    for body in HOSTILE_BODIES:
        for path in ("/api/auth/token/", "/api/auth/token/refresh/"):
            no_5xx(APIClient().post(path, json.dumps(body), content_type="application/json"), f"POST {path}")
    # Only a valid body could have written a row; none of these is one.
    assert (Trade.all_tenants.count(), Order.all_tenants.count()) == before


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "",
        "application/json; charset=utf-7",
    ],
)
def test_odd_content_types_are_4xx(client_a, content_type):
    for path in ("/api/trades/", "/api/auth/token/"):
        no_5xx(client_a.generic("POST", path, b"\xff\xfe{}", content_type=content_type), f"{content_type} {path}")


def test_hostile_query_strings_and_ids_on_every_read_route(client_a, user_a):
    for path in (*LIST_ROUTES, "/api/users/", "/api/users/me/"):
        for query in HOSTILE_QUERIES:
            no_5xx(client_a.get(path, query), f"GET {path} {query!r}")
    for path in (*LIST_ROUTES, "/api/users/"):
        for bad_id in HOSTILE_IDS:
            for method in ("GET", "PATCH", "DELETE"):
                response = client_a.generic(method, f"{path}{bad_id}/", "{}", content_type="application/json")
                no_5xx(response, f"{method} {path}{bad_id}/")
                # Nobody writes positions through the API: refused before the id is looked up.
                refused = (403,) if path == "/api/positions/" and method != "GET" else ()
                expected = (404, 405, *refused)
                assert response.status_code in expected, f"{method} {path}{bad_id}/ -> {response.status_code}"


def test_a_huge_page_size_is_capped(client_a, user_a):
    TradeFactory(user=user_a)
    response = client_a.get("/api/trades/", {"page_size": str(10**30)})
    assert response.status_code == 200 and len(response.json()["results"]) == 1


# --- gunicorn's own answers (live server) --------------------------------------


def raw_request(base: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


@pytest.fixture(scope="module")
def live_base(django_db_blocker):
    from tests.support.scratch import gunicorn, manage, scratch_database

    with django_db_blocker.unblock(), scratch_database("alphapulse_hostile") as name:
        manage(name, "migrate")
        with gunicorn(name, workers=1, threads=2) as base:
            yield base


@pytest.mark.slow
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /api/trades/?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (
            b"GET /api/trades/ HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(200)) + b"\r\n",
            431,
        ),
        (b"GET /api/trades/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /api/trades/ HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    ],
    ids=["request-line-too-long", "too-many-headers", "header-too-large", "bad-request-line", "bad-http-version"],
)
def test_gunicorns_own_errors_are_json(live_base, request_bytes, status):
    got, headers, body = raw_request(live_base, request_bytes)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert set(json.loads(body)) == {"detail"}
