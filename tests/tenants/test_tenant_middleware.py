"""TenantContextMiddleware and per-tenant login, through the whole HTTP stack.

Every refusal of tenants/http/middleware.py (401: no/bad/forged/expired token, a
tenant_id claim that is missing, malformed or unknown, a user outside the
claimed tenant; 403: suspended tenant, inactive user) answers JSON {"detail"}
and carries none of the rows that exist for either tenant. Login and refresh
give one identical 401 for every wrong part. After each request the
transaction-local tenant setting is gone from the (reused) connection, and
inside a request even raw SQL and an unfiltered manager see one tenant only.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest
from django.db import connection, connections
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tenants.constants import TENANT_SETTING
from tenants.context import current_tenant_id, tenant_context
from tenants.http.auth import LOGIN_FAILED, tokens_for
from tenants.http.tokens import ApiRefreshToken
from tenants.models import Tenant, User
from tenants.signing_keys import configured_ring
from tests.support.clients import PASSWORD, bearer_client
from tests.support.factories import TradeFactory, write_tenant
from trading.models import Trade
from trading.views import TradeViewSet

pytestmark = [pytest.mark.django_db, pytest.mark.citus]  # also on the cluster (make test-citus)

TRADES = "/api/trades/"
LOGIN = "/api/auth/token/"
REFRESH = "/api/auth/token/refresh/"


# --- helpers -----------------------------------------------------------------


def signing_key() -> str:
    """The secret that signs new tokens (the key ring's first key)."""
    return configured_ring().current.signing


def access_claims(user: User) -> dict:
    """The claims of a genuine access token for `user` (to be modified, then re-signed)."""
    return dict(AccessToken(tokens_for(user)["access"]).payload)


def sign(claims: dict, key: str | None = None, algorithm: str = "HS256") -> str:
    """Signed as the server signs (its current key's kid in the header), with `key` if given."""
    return jwt.encode(claims, key or signing_key(), algorithm=algorithm, headers={"kid": configured_ring().current.kid})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def decode(token: str) -> dict:
    return jwt.decode(token, signing_key(), algorithms=["HS256"])


def get_with(header: str | None, path: str = TRADES):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client.get(path)


def tenant_setting() -> str | None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [TENANT_SETTING])
        return cursor.fetchone()[0]


def backend_pid() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def assert_refused(response, status: int, rows=(), detail_contains: str = "") -> dict:
    """A refusal: the status, JSON {"detail": str} and nothing else, no row id anywhere."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert detail_contains in body["detail"]
    content = response.content.decode()
    for row in rows:
        assert str(row.pk) not in content
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    return body


@pytest.fixture
def rows(user_a, user_b):
    """Rows of both tenants, so that a leaking refusal would have something to leak."""
    return [TradeFactory(user=user_a), TradeFactory(user=user_a), TradeFactory(user=user_b)]


def trade_count(tenant) -> int:
    with tenant_context(tenant):
        return Trade.objects.count()


# --- the middleware's refusals -------------------------------------------------


def test_a_genuine_token_is_accepted_and_sees_its_tenants_rows(client_a, user_a, rows):
    """The control for every refusal below: the same route, a real token, 200."""
    response = client_a.get(TRADES)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert sorted(r["id"] for r in response.json()["results"]) == sorted(str(t.pk) for t in rows[:2])


def test_missing_authorization_header_is_401(rows):
    assert_refused(get_with(None), 401, rows, "Authentication credentials were not provided")


@pytest.mark.parametrize(
    "header",
    [
        "Token {access}",
        "JWT {access}",
        "bearer {access}",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        "{access}",
        "Bearer",
        "Bearer ",
        "Bearer    ",
    ],
    ids=["token", "jwt", "lowercase-bearer", "basic", "no-scheme", "bearer-alone", "bearer-space", "bearer-blank"],
)
def test_wrong_scheme_or_empty_credentials_is_401(header, user_a, rows):
    header = header.format(access=tokens_for(user_a)["access"])
    assert_refused(get_with(header), 401, rows, "Authorization header must be 'Bearer <access token>'")


def test_alg_none_token_from_pyjwt_is_401(user_a, rows):
    forged = jwt.encode(access_claims(user_a), key=None, algorithm="none")
    assert forged.endswith(".")  # really unsigned
    assert_refused(get_with(f"Bearer {forged}"), 401, rows, "Token rejected")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS256"])
def test_hand_built_unsigned_token_is_401(alg, user_a, rows):
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(access_claims(user_a)).encode())
    assert_refused(get_with(f"Bearer {header}.{payload}."), 401, rows, "Token rejected")


def test_token_signed_with_a_wrong_key_is_401(user_a, rows):
    forged = sign(access_claims(user_a), key="not-the-signing-key-" + "x" * 32)
    assert_refused(get_with(f"Bearer {forged}"), 401, rows, "Token rejected")


# The forger's HS512 wants a 64-byte key; PyJWT's warning about the 43-byte HS256 key is the point.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_token_signed_with_the_right_key_but_another_algorithm_is_401(user_a, rows):
    forged = sign(access_claims(user_a), algorithm="HS512")
    assert_refused(get_with(f"Bearer {forged}"), 401, rows, "Token rejected")


def test_expired_token_is_401(user_a, rows):
    claims = access_claims(user_a)
    claims["iat"] = int(time.time()) - 3600
    claims["exp"] = int(time.time()) - 60
    # Correctly signed: only the expiry is wrong.
    assert_refused(get_with(f"Bearer {sign(claims)}"), 401, rows, "Token rejected")


def test_tampered_payload_with_the_original_signature_is_401(user_a, user_b, rows):
    header, payload, signature = tokens_for(user_a)["access"].split(".")
    claims = b64url_json(payload)
    assert claims["tenant_id"] == str(user_a.tenant_id)
    claims["tenant_id"] = str(user_b.tenant_id)
    tampered = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert_refused(get_with(f"Bearer {tampered}"), 401, rows, "Token rejected")


def test_refresh_token_used_as_access_token_is_401(user_a, rows):
    refresh = tokens_for(user_a)["refresh"]
    assert decode(refresh)["token_type"] == "refresh"
    assert_refused(get_with(f"Bearer {refresh}"), 401, rows, "Token rejected")


def test_token_without_tenant_id_claim_is_401(user_a, rows):
    claims = access_claims(user_a)
    del claims["tenant_id"]
    assert_refused(get_with(f"Bearer {sign(claims)}"), 401, rows, "Token has no tenant_id claim.")


@pytest.mark.parametrize("value", ["", None, 0, False])
def test_empty_tenant_id_claim_is_401(value, user_a, rows):
    claims = {**access_claims(user_a), "tenant_id": value}
    assert_refused(get_with(f"Bearer {sign(claims)}"), 401, rows, "Token has no tenant_id claim.")


@pytest.mark.parametrize(
    "value",
    ["acme", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", "' OR 1=1 --", 12345, ["x"]],
    ids=["slug", "text", "bad-hex", "sql", "int", "list"],
)
def test_tenant_id_claim_that_is_not_a_uuid_is_401(value, user_a, rows):
    claims = {**access_claims(user_a), "tenant_id": value}
    assert_refused(get_with(f"Bearer {sign(claims)}"), 401, rows, "Token's tenant_id claim is not a UUID.")


def test_tenant_id_claim_naming_an_unknown_tenant_is_401(user_a, rows):
    claims = {**access_claims(user_a), "tenant_id": str(uuid.uuid4())}
    assert_refused(get_with(f"Bearer {sign(claims)}"), 401, rows, "Token's tenant does not exist.")


@pytest.mark.parametrize("direction", ["a-user-in-b", "b-user-in-a"])
def test_tenant_id_claim_naming_another_tenant_than_the_users_is_401(direction, user_a, user_b, rows):
    """A validly signed token whose user is not in the claimed tenant: the user lookup
    runs under the claimed tenant's RLS, finds nobody, and nothing is listed."""
    user, other = (user_a, user_b) if direction == "a-user-in-b" else (user_b, user_a)
    claims = {**access_claims(user), "tenant_id": str(other.tenant_id)}
    body = assert_refused(get_with(f"Bearer {sign(claims)}"), 401, rows, "Token's user is not a user of its tenant.")
    assert user.username not in body["detail"]
    # The same token on the users route (which would list the claimed tenant's users) leaks nothing either.
    users = get_with(f"Bearer {sign(claims)}", "/api/users/")
    assert_refused(users, 401, rows)
    assert other.username not in users.content.decode()


@pytest.mark.parametrize("value", [None, "alice", str(uuid.uuid4())], ids=["missing", "not-uuid", "unknown"])
def test_bad_user_id_claim_is_401(value, user_a, rows):
    claims = access_claims(user_a)
    if value is None:
        del claims["user_id"]
    else:
        claims["user_id"] = value
    assert_refused(get_with(f"Bearer {sign(claims)}"), 401, rows)


def test_suspended_tenant_is_403(client_a, tenant_a, rows):
    write_tenant(tenant_a, status=Tenant.Status.SUSPENDED)
    body = assert_refused(client_a.get(TRADES), 403, rows, "suspended")
    assert body == {"detail": "Tenant 'acme' is suspended."}
    assert "WWW-Authenticate" not in client_a.get(TRADES)


def test_suspending_one_tenant_leaves_the_other_working(client_a, client_b, tenant_a, user_b, rows):
    write_tenant(tenant_a, status=Tenant.Status.SUSPENDED)
    assert client_a.get(TRADES).status_code == 403
    response = client_b.get(TRADES)
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [str(rows[2].pk)]


def test_inactive_user_is_403(client_a, user_a, rows):
    with tenant_context(user_a.tenant):
        assert User.objects.filter(pk=user_a.pk).update(is_active=False) == 1
    body = assert_refused(client_a.get(TRADES), 403, rows)
    assert body == {"detail": "User 'alice' is inactive."}


@pytest.mark.parametrize(
    "make_header",
    [
        lambda u: None,
        lambda u: "Token " + tokens_for(u)["access"],
        lambda u: "Bearer " + jwt.encode(access_claims(u), key=None, algorithm="none"),
        lambda u: "Bearer " + sign(access_claims(u), key="wrong-key-" + "y" * 32),
        lambda u: "Bearer " + tokens_for(u)["refresh"],
        lambda u: "Bearer " + sign({**access_claims(u), "tenant_id": str(uuid.uuid4())}),
    ],
    ids=["none", "scheme", "alg-none", "wrong-key", "refresh", "unknown-tenant"],
)
def test_refused_write_writes_nothing(make_header, user_a):
    before = trade_count(user_a.tenant)
    client = APIClient()
    header = make_header(user_a)
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post(TRADES, {"symbol": "AAPL", "side": "buy", "quantity": "1", "price": "1"}, format="json")
    assert_refused(response, 401)
    assert trade_count(user_a.tenant) == before


def test_refused_write_of_inactive_user_writes_nothing(client_a, user_a):
    with tenant_context(user_a.tenant):
        User.objects.filter(pk=user_a.pk).update(is_active=False)
    response = client_a.post(TRADES, {"symbol": "AAPL", "side": "buy", "quantity": "1", "price": "1"}, format="json")
    assert_refused(response, 403)
    assert trade_count(user_a.tenant) == 0


def test_routes_outside_the_api_and_public_api_routes_need_no_token(db):
    assert APIClient().get("/health").status_code == 200
    assert APIClient().get("/api/schema/").status_code == 200
    # Login answers on its own terms (a 400 for an empty body), not the middleware's 401.
    response = APIClient().post(LOGIN, {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"tenant", "username", "password"}


# --- login and refresh -----------------------------------------------------------


def login(tenant: str, username: str, password: str = PASSWORD):
    return APIClient().post(LOGIN, {"tenant": tenant, "username": username, "password": password}, format="json")


def test_login_gives_access_and_refresh_tokens_carrying_tenant_and_user(user_a, user_b):
    response = login("acme", "alice")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}
    access, refresh = decode(tokens["access"]), decode(tokens["refresh"])
    assert access["token_type"] == "access"
    assert refresh["token_type"] == "refresh"
    for claims in (access, refresh):
        assert claims["tenant_id"] == str(user_a.tenant_id)
        assert claims["user_id"] == str(user_a.pk)
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    body = me.get("/api/users/me/").json()
    assert (body["id"], body["tenant_id"], body["username"]) == (str(user_a.pk), str(user_a.tenant_id), "alice")


def test_same_username_in_two_tenants_logs_in_to_the_named_one(tenant_a, tenant_b):
    from tests.support.factories import UserFactory

    sam_a = UserFactory(tenant=tenant_a, username="sam", password="password-of-a")
    sam_b = UserFactory(tenant=tenant_b, username="sam", password="password-of-b")
    assert decode(login("acme", "sam", "password-of-a").json()["access"])["user_id"] == str(sam_a.pk)
    assert decode(login("globex", "sam", "password-of-b").json()["access"])["user_id"] == str(sam_b.pk)
    # Each password only opens its own tenant.
    assert login("acme", "sam", "password-of-b").status_code == 401
    assert login("globex", "sam", "password-of-a").status_code == 401


def test_every_failed_login_gives_the_same_401(user_a, user_b, tenant_b):
    from tests.support.factories import TenantFactory, UserFactory

    frozen = TenantFactory(slug="frozen", status=Tenant.Status.SUSPENDED)
    UserFactory(tenant=frozen, username="fred", password=PASSWORD)
    UserFactory(tenant=tenant_b, username="ivy", password=PASSWORD, is_active=False)
    attempts = {
        "wrong password": login("acme", "alice", PASSWORD + "x"),
        "password in other case": login("acme", "alice", PASSWORD.upper()),
        "unknown user": login("acme", "nobody"),
        "unknown tenant": login("no-such-firm", "alice"),
        "suspended tenant": login("frozen", "fred"),
        "user of another tenant": login("acme", "bob"),
        "inactive user": login("globex", "ivy"),
    }
    assert login("globex", "bob").status_code == 200  # bob's password is right, in his own tenant
    for reason, response in attempts.items():
        assert response.status_code == 401, reason
        assert response["Content-Type"] == "application/json", reason
        assert response.json() == {"detail": LOGIN_FAILED}, reason
        assert response.content == attempts["wrong password"].content, reason
        assert response.get("WWW-Authenticate") == attempts["wrong password"].get("WWW-Authenticate"), reason


MALFORMED_LOGIN_BODIES = [
    "",
    "{",
    "null",
    "[]",
    '"acme"',
    "123",
    "{}",
    '{"tenant": "acme"}',
    '{"tenant": "acme", "username": "alice"}',
    '{"tenant": null, "username": null, "password": null}',
    '{"tenant": ["acme"], "username": {"u": 1}, "password": 5}',
    '{"tenant": "ac me", "username": "alice", "password": "x"}',
    '{"tenant": "acme\\u0000", "username": "alice", "password": "x"}',
    '{"tenant": "acme", "username": "al\\u0000ice", "password": "x"}',
    '{"tenant": "acme", "username": "alice", "password": "p\\u0000"}',
    '{"tenant": "' + "a" * 101 + '", "username": "alice", "password": "x"}',
    '{"tenant": "acme", "username": "' + "u" * 151 + '", "password": "x"}',
    '{"tenant": "acme", "username": "alice", "password": "' + "p" * 4097 + '"}',
    '{"tenant": "\\u00e4cme", "username": "alice", "password": "x"}',
    '{"tenant": "acme", "username": "alice\'; DROP TABLE users; --", "password": "x"}',
    '{"tenant": "acme", "username": "alice", "password": "x", "tenant_id": "00000000-0000-0000-0000-000000000001"}',
]


@pytest.mark.parametrize("raw", MALFORMED_LOGIN_BODIES, ids=range(len(MALFORMED_LOGIN_BODIES)))
def test_malformed_login_body_is_400_or_401_never_500(raw, user_a):
    response = APIClient().generic("POST", LOGIN, raw, content_type="application/json")
    assert response.status_code in (400, 401), response.content
    assert response["Content-Type"] == "application/json"
    assert "access" not in response.json()


def test_login_with_a_form_body_is_refused_without_500(user_a):
    response = APIClient().post(LOGIN, {"tenant": "acme", "username": "alice", "password": PASSWORD})
    assert response.status_code == 415
    assert "detail" in response.json()


def test_refresh_gives_a_new_access_token_for_the_same_tenant_and_user(user_a):
    refresh = login("acme", "alice").json()["refresh"]
    response = APIClient().post(REFRESH, {"refresh": refresh}, format="json")
    assert response.status_code == 200, response.content
    # Refresh tokens rotate (tenants.sessions): a new one comes with the access token.
    assert set(response.json()) == {"access", "refresh"}
    claims = decode(response.json()["access"])
    assert (claims["token_type"], claims["tenant_id"], claims["user_id"]) == (
        "access",
        str(user_a.tenant_id),
        str(user_a.pk),
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert client.get("/api/users/me/").json()["id"] == str(user_a.pk)


def test_refresh_fails_once_the_tenant_is_suspended(user_a, tenant_a):
    refresh = login("acme", "alice").json()["refresh"]
    write_tenant(tenant_a, status=Tenant.Status.SUSPENDED)
    response = APIClient().post(REFRESH, {"refresh": refresh}, format="json")
    assert_refused(response, 401, detail_contains="unknown or suspended")


def test_refresh_fails_once_the_user_is_deactivated(user_a):
    refresh = login("acme", "alice").json()["refresh"]
    with tenant_context(user_a.tenant):
        User.objects.filter(pk=user_a.pk).update(is_active=False)
    response = APIClient().post(REFRESH, {"refresh": refresh}, format="json")
    assert_refused(response, 401, detail_contains="unknown or inactive")


def test_refresh_fails_when_the_user_is_not_in_the_claimed_tenant(user_a, user_b):
    """A (validly signed) refresh token pairing A's user with B's tenant mints nothing."""
    refresh = ApiRefreshToken(tokens_for(user_a)["refresh"])
    refresh["tenant_id"] = str(user_b.tenant_id)
    response = APIClient().post(REFRESH, {"refresh": str(refresh)}, format="json")
    assert_refused(response, 401, detail_contains="unknown or inactive")


@pytest.mark.parametrize(
    "make_refresh",
    [
        lambda u: tokens_for(u)["access"],
        lambda u: "not.a.token",
        lambda u: jwt.encode({**decode(tokens_for(u)["refresh"])}, key=None, algorithm="none"),
        lambda u: sign({**decode(tokens_for(u)["refresh"])}, key="wrong-key-" + "z" * 32),
        lambda u: sign({k: v for k, v in decode(tokens_for(u)["refresh"]).items() if k != "tenant_id"}),
    ],
    ids=["access-token", "garbage", "alg-none", "wrong-key", "no-tenant-claim"],
)
def test_refresh_with_a_bad_token_is_401(make_refresh, user_a):
    response = APIClient().post(REFRESH, {"refresh": make_refresh(user_a)}, format="json")
    assert_refused(response, 401)


@pytest.mark.parametrize("raw", ["", "{", "null", "[]", "{}", '{"refresh": null}', '{"refresh": ["x"]}'])
def test_malformed_refresh_body_is_400_or_401_never_500(raw, db):
    response = APIClient().generic("POST", REFRESH, raw, content_type="application/json")
    assert response.status_code in (400, 401), response.content
    assert "access" not in response.json()


# --- the tenant setting on the connection ------------------------------------------


def test_the_tenant_setting_is_gone_after_each_request(client_a, user_a, rows):
    trade = {"symbol": "AAPL", "side": "buy", "quantity": "1", "price": "1"}
    with tenant_context(user_a.tenant):
        pass  # the setting has now existed on this connection: '' rather than NULL from here on
    calls = [
        (lambda: client_a.get(TRADES), 200),
        (lambda: client_a.post(TRADES, trade, format="json"), 201),
        (lambda: client_a.post(TRADES, {**trade, "side": "hold"}, format="json"), 400),
        (lambda: client_a.get(f"{TRADES}{uuid.uuid4()}/"), 404),
        (lambda: client_a.get("/api/users/me/"), 200),
    ]
    for call, status in calls:
        assert call().status_code == status
        assert tenant_setting() in (None, "")
        assert current_tenant_id() is None


def test_the_tenant_setting_is_gone_after_a_refusal_inside_the_context(client_a, user_a):
    with tenant_context(user_a.tenant):
        User.objects.filter(pk=user_a.pk).update(is_active=False)
    assert client_a.get(TRADES).status_code == 403
    assert tenant_setting() in (None, "")
    assert current_tenant_id() is None


def test_after_a_request_raw_sql_on_the_connection_sees_no_rows(client_a, rows):
    assert client_a.get(TRADES).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM trades")
        assert cursor.fetchone()[0] == 0


def test_back_to_back_requests_of_two_tenants_on_one_connection(user_a, user_b):
    own = {
        user_a.tenant_id: {str(TradeFactory(user=user_a).pk) for _ in range(3)},
        user_b.tenant_id: {str(TradeFactory(user=user_b).pk) for _ in range(2)},
    }
    clients = {user_a.tenant_id: bearer_client(user_a), user_b.tenant_id: bearer_client(user_b)}
    pids, raw_connections = set(), set()
    for tenant_id in [user_a.tenant_id, user_b.tenant_id] * 3:
        body = clients[tenant_id].get(TRADES).json()
        assert {r["id"] for r in body["results"]} == own[tenant_id]
        assert {r["tenant_id"] for r in body["results"]} == {str(tenant_id)}
        assert tenant_setting() in (None, "")
        pids.add(backend_pid())
        raw_connections.add(id(connections["default"].connection))
    # One PostgreSQL session served both tenants in turn: nothing carried over.
    assert len(pids) == 1
    assert len(raw_connections) == 1


# --- raw SQL and unfiltered managers inside a request ----------------------------------


def test_raw_sql_inside_a_request_sees_only_the_requests_tenant(monkeypatch, client_a, client_b, user_a, user_b):
    for _ in range(3):
        TradeFactory(user=user_a)
    for _ in range(2):
        TradeFactory(user=user_b)

    def raw_list(self, request, *args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT tenant_id::text, count(*) FROM trades GROUP BY tenant_id")
            counts = dict(cursor.fetchall())
            cursor.execute("SELECT current_setting(%s, true)", [TENANT_SETTING])
            setting = cursor.fetchone()[0]
        return Response({"counts": counts, "setting": setting})

    monkeypatch.setattr(TradeViewSet, "list", raw_list)
    assert client_a.get(TRADES).json() == {"counts": {str(user_a.tenant_id): 3}, "setting": str(user_a.tenant_id)}
    assert client_b.get(TRADES).json() == {"counts": {str(user_b.tenant_id): 2}, "setting": str(user_b.tenant_id)}


def test_a_view_that_forgets_the_scoped_manager_still_lists_one_tenant(monkeypatch, client_a, user_a, rows):
    """RLS alone: the view's queryset adds no tenant filter at all."""
    monkeypatch.setattr(TradeViewSet, "get_queryset", lambda self: Trade.all_tenants.all())
    body = client_a.get(TRADES).json()
    assert sorted(r["id"] for r in body["results"]) == sorted(str(t.pk) for t in rows[:2])
    assert {r["tenant_id"] for r in body["results"]} == {str(user_a.tenant_id)}
    foreign = client_a.get(f"{TRADES}{rows[2].pk}/")
    assert foreign.status_code == 404


def test_raw_sql_in_process_sees_only_the_context_tenants_rows(user_a, user_b):
    for _ in range(4):
        TradeFactory(user=user_a)
    TradeFactory(user=user_b)
    with tenant_context(user_a.tenant), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM trades")
        assert cursor.fetchone()[0] == 4
        cursor.execute("SELECT count(*) FROM trades WHERE tenant_id = %s", [user_b.tenant_id])
        assert cursor.fetchone()[0] == 0
    with tenant_context(user_b.tenant), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM trades")
        assert cursor.fetchone()[0] == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM trades")
        assert cursor.fetchone()[0] == 0
