"""Where the tenant of a request is decided: the verified JWT or API key, nothing else.

For every /api/ route except login, token refresh and the schema,
TenantContextMiddleware
1. verifies the bearer token with simplejwt and the key ring (signature, its
   `kid`, expiry, type); `alg: none`, unknown keys, tampering, expiry -> 401;
   or parses an `Api-Key <key>` header (tenants.api_keys; malformed -> 401);
2. takes the `tenant_id`, `user_id` and `sid` (session) claims: missing or
   not a UUID -> 401 (a key carries its tenant id in its text);
3. enters tenant_transaction(claimed tenant) with the identity lookups
   riding in its opening round trip: BEGIN, `SET LOCAL
   app.current_tenant_id`, the tenant row joined to the user row and the
   session row (a token), or to the key's row and its user's (a key), under
   RLS, in one statement, one
   pipeline, one network round trip (tenants.database.tenant_setting.open_tenant_transaction).
   An ended session, or a key that is unknown, tampered, revoked, expired or
   whose user is inactive -> 401.
   The same trip makes the transaction READ ONLY where the request may not
   write: `BEGIN READ ONLY` for GET/HEAD/OPTIONS, and for a write, a guard
   statement that turns it read-only unless the user's role is one that may
   write through the route (tenants.access): a write that slips past the API
   check is refused by PostgreSQL (answered 403 by alphapulse.exceptions);
   unknown tenant -> 401, suspended -> 403; a user that is not in the
   claimed tenant -> 401, an inactive one -> 403. Both are read afresh on
   every request, so a suspension or deactivation holds from the next one;
4. runs the view inside that same transaction; any 4xx/5xx rolls it back.

Before it waits for that opening round trip, a token's request sends its
tenant's rate-limit count to Redis, and reads the answer after PostgreSQL's
(tenants.http.throttling.TenantCountInFlight): the two waits overlap. A
read-only transaction's COMMIT is sent, not waited for
(tenants.database.backend).

No health-check `SELECT 1` before each request (CONN_HEALTH_CHECKS is off for
the app connection): when a kept connection turns out dead in that opening
round trip (a database restart, a dropped idle connection), nothing has run
yet, so the request is retried once on a new connection; a database that is
still away answers 503 JSON.

DRF authenticates later, inside the view; it takes the user found here
(tenants.http.auth.TenantJWTAuthentication). All refusals are JSON {"detail"}.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.http import HttpRequest, HttpResponse, JsonResponse
from psycopg import sql
from rest_framework_simplejwt.exceptions import TokenError

from alphapulse.exceptions import database_failure_response
from tenants import api_keys
from tenants.context import tenant_transaction
from tenants.database.routers import _staff_request
from tenants.database.tenant_setting import Query
from tenants.http import idempotency
from tenants.http.permissions import WriteGuard, write_guard
from tenants.http.throttling import LoginThrottle, TenantCountInFlight
from tenants.http.token_checks import checked_token
from tenants.http.tokens import SESSION_CLAIM, TENANT_CLAIM, ApiAccessToken
from tenants.models import ApiKey, Tenant, User, UserSession

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# Login and refresh (logout and logout-all, under /api/auth/ too, need a principal).
PUBLIC_API_PREFIXES = ("/api/auth/token/", "/api/schema/", "/api/docs/")
API_KEY_SCHEME = "Api-Key"


class TenantHttpRequest(HttpRequest):
    """An API request once TenantContextMiddleware has let it through."""

    tenant: Tenant
    tenant_user: User
    token_claims: dict[str, Any]
    api_key: ApiKey | None


class RefusalReason(StrEnum):
    """Why a request was refused before its view: a bounded code that metrics and logs read.

    The `detail` a client sees is prose and may change; the code does not.
    """

    NO_CREDENTIALS = "no_credentials"
    BAD_AUTH_HEADER = "bad_auth_header"
    TOKEN_REJECTED = "token_rejected"
    NO_TENANT_CLAIM = "no_tenant_claim"
    BAD_TENANT_CLAIM = "bad_tenant_claim"
    UNKNOWN_TENANT = "unknown_tenant"
    BAD_USER_CLAIM = "bad_user_claim"
    USER_NOT_IN_TENANT = "user_not_in_tenant"
    TENANT_SUSPENDED = "tenant_suspended"
    USER_INACTIVE = "user_inactive"
    BAD_SESSION_CLAIM = "bad_session_claim"
    SESSION_ENDED = "session_ended"
    BAD_API_KEY = "bad_api_key"
    API_KEY_REJECTED = "api_key_rejected"


class Refused(Exception):
    def __init__(self, status: int, reason: RefusalReason, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail

    def response(self) -> JsonResponse:
        response = JsonResponse({"detail": self.detail}, status=self.status)
        # Read by platform_ops' request middleware for its metrics and log line.
        response.refusal_reason = self.reason.value  # type: ignore[attr-defined]
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response


def verified_claims(request: HttpRequest) -> ApiAccessToken:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if not header:
        raise Refused(
            401,
            RefusalReason.NO_CREDENTIALS,
            "Authentication credentials were not provided: send 'Authorization: Bearer <access token>' "
            "or 'Authorization: Api-Key <key>'.",
        )
    if scheme not in settings.SIMPLE_JWT["AUTH_HEADER_TYPES"] or not raw.strip():
        raise Refused(
            401,
            RefusalReason.BAD_AUTH_HEADER,
            "Authorization header must be 'Bearer <access token>' or 'Api-Key <key>'.",
        )
    try:
        return checked_token(ApiAccessToken, raw.strip())
    except TokenError as exc:
        raise Refused(401, RefusalReason.TOKEN_REJECTED, f"Token rejected: {exc}") from exc


def presented_api_key(request: HttpRequest) -> api_keys.PresentedKey | None:
    """The request's `Api-Key <key>`, well-formed, or None when it sends another scheme (401 if malformed)."""
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme != API_KEY_SCHEME:
        return None
    presented = api_keys.parse_key(raw.strip())
    if presented is None:
        raise Refused(
            401,
            RefusalReason.BAD_API_KEY,
            "Malformed API key: send 'Authorization: Api-Key ap_<tenant>_<prefix>_<secret>'.",
        )
    return presented


def claimed_tenant_id(token: ApiAccessToken) -> uuid.UUID:
    claim = token.get(TENANT_CLAIM)
    if not claim:
        raise Refused(401, RefusalReason.NO_TENANT_CLAIM, "Token has no tenant_id claim.")
    try:
        return uuid.UUID(str(claim))
    except ValueError as exc:
        raise Refused(401, RefusalReason.BAD_TENANT_CLAIM, "Token's tenant_id claim is not a UUID.") from exc


def claimed_user_id(token: ApiAccessToken) -> uuid.UUID:
    try:
        return uuid.UUID(str(token.get(settings.SIMPLE_JWT["USER_ID_CLAIM"])))
    except ValueError as exc:
        raise Refused(401, RefusalReason.BAD_USER_CLAIM, "Token's user_id claim is not a UUID.") from exc


def claimed_session_id(token: ApiAccessToken) -> uuid.UUID:
    try:
        return uuid.UUID(str(token.get(SESSION_CLAIM)))
    except ValueError as exc:
        raise Refused(401, RefusalReason.BAD_SESSION_CLAIM, "Token has no session (sid claim): log in again.") from exc


def _columns(model: type[Tenant] | type[User] | type[ApiKey], alias: str = "") -> sql.Composable:
    return sql.SQL(", ").join(
        sql.Identifier(*filter(None, (alias, field.column))) for field in model._meta.concrete_fields
    )


# A token's identity in one statement: the claimed tenant's row, joined to the
# token's user and to its session (whether it has ended), NULL where either
# is missing. The user and the session are named by the explicit tenant filter
# (which routes them to one worker on Citus) as well as by RLS, as the
# tenant-scoped manager would write it. One statement, not three: each
# statement of the opening pipeline costs Python and PostgreSQL some CPU.
TOKEN_IDENTITY_SQL = (
    sql.SQL(
        "SELECT {tenant}, {user}, s.{id}, s.{ended_at} FROM {tenants} t "
        "LEFT JOIN {users} u ON u.{tenant_id} = %s AND u.{id} = %s "
        "LEFT JOIN {sessions} s ON s.{tenant_id} = %s AND s.{id} = %s AND s.{user_id} = %s "
        "WHERE t.{id} = %s"
    )
    .format(
        tenant=_columns(Tenant, "t"),
        user=_columns(User, "u"),
        tenants=sql.Identifier(Tenant._meta.db_table),
        users=sql.Identifier(User._meta.db_table),
        sessions=sql.Identifier(UserSession._meta.db_table),
        id=sql.Identifier("id"),
        tenant_id=sql.Identifier("tenant_id"),
        user_id=sql.Identifier("user_id"),
        ended_at=sql.Identifier("ended_at"),
    )
    .as_string(None)
)
# The key's row and its user's, joined on the distribution column (one worker on Citus).
# A key's identity in one statement: the tenant's row, joined to the key's
# row and its user's (on the distribution column: one worker on Citus), NULL
# where the key is not there.
API_KEY_IDENTITY_SQL = (
    sql.SQL(
        "SELECT {tenant}, {key}, {user} FROM {tenants} t "
        "LEFT JOIN {keys} k ON k.tenant_id = %s AND k.prefix = %s "
        "LEFT JOIN {users} u ON u.tenant_id = %s AND u.id = k.user_id "
        "WHERE t.id = %s"
    )
    .format(
        tenant=_columns(Tenant, "t"),
        key=_columns(ApiKey, "k"),
        user=_columns(User, "u"),
        tenants=sql.Identifier(Tenant._meta.db_table),
        keys=sql.Identifier(ApiKey._meta.db_table),
        users=sql.Identifier(User._meta.db_table),
    )
    .as_string(None)
)


def identity_queries(tenant_id: uuid.UUID, user_id: uuid.UUID, session_id: uuid.UUID | None = None) -> list[Query]:
    """What a token's request must read before its view: the claimed tenant, the user, the session."""
    return [(TOKEN_IDENTITY_SQL, [tenant_id, user_id, tenant_id, session_id, user_id, tenant_id])]


def _found(model: type[User] | type[ApiKey], columns: tuple) -> bool:
    """A LEFT JOIN's columns of `model` hold a row (its primary key is not NULL)."""
    names = [field.attname for field in model._meta.concrete_fields]
    return columns[names.index(model._meta.pk.attname)] is not None


def token_identity_rows(row: tuple | None) -> list[tuple | None]:
    """TOKEN_IDENTITY_SQL's row as [tenant row, user row, session row (ended_at,)], None where missing."""
    if row is None:
        return [None, None, None]
    tenant_width, user_width = len(Tenant._meta.concrete_fields), len(User._meta.concrete_fields)
    tenant, user, session = row[:tenant_width], row[tenant_width : tenant_width + user_width], row[-2:]
    return [tenant, user if _found(User, user) else None, session[1:] if session[0] is not None else None]


def api_key_queries(presented: api_keys.PresentedKey) -> list[Query]:
    """What a key's request must read before its view: the tenant, the key and its user."""
    tenant_id = presented.tenant_id
    return [(API_KEY_IDENTITY_SQL, [tenant_id, presented.prefix, tenant_id, tenant_id])]


def api_key_identity_rows(row: tuple | None) -> list[tuple | None]:
    """API_KEY_IDENTITY_SQL's row as [tenant row, key and user row], None where missing."""
    if row is None:
        return [None, None]
    tenant_width, key_width = len(Tenant._meta.concrete_fields), len(ApiKey._meta.concrete_fields)
    tenant, key, user = (
        row[:tenant_width],
        row[tenant_width : tenant_width + key_width],
        row[tenant_width + key_width :],
    )
    return [tenant, key + user if _found(ApiKey, key) and _found(User, user) else None]


# The transaction turns READ ONLY unless the token's user holds one of the
# roles that may write through the route (tenants.http.permissions.write_guard).
# A user row that is missing turns nothing: that request is refused anyway.
READ_ONLY_GUARD_SQL = (
    sql.SQL(
        "SELECT set_config('transaction_read_only', 'on', true) FROM {} WHERE {} = %s AND {} = %s AND {} <> ALL(%s)"
    )
    .format(
        sql.Identifier(User._meta.db_table),
        sql.Identifier("tenant_id"),
        sql.Identifier("id"),
        sql.Identifier("role"),
    )
    .as_string(None)
)


# The same, for a key's user (found through the key).
API_KEY_READ_ONLY_GUARD_SQL = (
    sql.SQL(
        "SELECT set_config('transaction_read_only', 'on', true) FROM {users} u JOIN {keys} k "
        "ON k.tenant_id = u.tenant_id AND k.user_id = u.id WHERE u.tenant_id = %s AND k.prefix = %s "
        "AND u.role <> ALL(%s)"
    )
    .format(users=sql.Identifier(User._meta.db_table), keys=sql.Identifier(ApiKey._meta.db_table))
    .as_string(None)
)


def read_only_guard(guard: WriteGuard, tenant_id: uuid.UUID, user_id: uuid.UUID) -> Query | None:
    if guard.writers is None:
        return None
    return (READ_ONLY_GUARD_SQL, [tenant_id, user_id, sorted(guard.writers)])


def api_key_read_only_guard(guard: WriteGuard, presented: api_keys.PresentedKey) -> Query | None:
    if guard.writers is None:
        return None
    return (API_KEY_READ_ONLY_GUARD_SQL, [presented.tenant_id, presented.prefix, sorted(guard.writers)])


def _instance(model: type[Tenant] | type[User] | type[ApiKey], row: tuple) -> Any:
    fields = model._meta.concrete_fields
    connection = connections[DEFAULT_DB_ALIAS]
    # The converters the ORM would apply (a JSON column arrives as text).
    values = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, row, strict=True)
    ]
    return model.from_db(DEFAULT_DB_ALIAS, [field.attname for field in fields], values)


def claimed_tenant(row: tuple | None) -> Tenant:
    if row is None:
        raise Refused(401, RefusalReason.UNKNOWN_TENANT, "Token's tenant does not exist.")
    tenant = _instance(Tenant, row)
    if not tenant.is_active:
        raise Refused(403, RefusalReason.TENANT_SUSPENDED, f"Tenant '{tenant.slug}' is suspended.")
    return tenant


def claimed_user(row: tuple | None) -> User:
    """The token's user, read inside the tenant transaction (so under RLS)."""
    if row is None:
        raise Refused(401, RefusalReason.USER_NOT_IN_TENANT, "Token's user is not a user of its tenant.")
    user = _instance(User, row)
    if not user.is_active:
        raise Refused(403, RefusalReason.USER_INACTIVE, f"User '{user.username}' is inactive.")
    return user


def open_session(row: tuple | None) -> None:
    """The token's session is open (its row exists, for this user, and has not ended), else 401."""
    if row is None or row[0] is not None:
        raise Refused(401, RefusalReason.SESSION_ENDED, "This token's session has ended: log in again.")


def key_principal(row: tuple | None, presented: api_keys.PresentedKey) -> tuple[ApiKey, User]:
    """The key and its user, once the key is checked (tenants.api_keys.refusal), else 401."""
    key_width = len(ApiKey._meta.concrete_fields)
    key = _instance(ApiKey, row[:key_width]) if row is not None else None
    user = _instance(User, row[key_width:]) if row is not None else None
    refused = api_keys.refusal(key, presented, user)
    if refused is not None:
        raise Refused(401, RefusalReason.API_KEY_REJECTED, refused)
    assert key is not None and user is not None
    return key, user


@dataclass(frozen=True)
class Credentials:
    """What the request presented, checked as far as it can be before the database."""

    tenant_id: uuid.UUID
    queries: list[Query]
    guard: Query | None
    idempotency_principal: str  # tenants.http.idempotency.principal_of
    token: ApiAccessToken | None = None
    api_key: api_keys.PresentedKey | None = None

    def split(self, rows: list[tuple | None]) -> tuple[tuple | None, list[tuple | None], list[tuple | None]]:
        """The opening round trip's rows as (the tenant's row, the identity rows, the Idempotency-Key claim's)."""
        expand = token_identity_rows if self.token is not None else api_key_identity_rows
        tenant, *identity = expand(rows[0])
        return tenant, identity, rows[1:]


def credentials_of(request: HttpRequest, guard: WriteGuard) -> Credentials:
    presented = presented_api_key(request)
    if presented is not None:
        return Credentials(
            presented.tenant_id,
            api_key_queries(presented),
            api_key_read_only_guard(guard, presented),
            idempotency.principal_of(api_key_prefix=presented.prefix),
            api_key=presented,
        )
    token = verified_claims(request)
    tenant_id, user_id, session_id = claimed_tenant_id(token), claimed_user_id(token), claimed_session_id(token)
    return Credentials(
        tenant_id,
        identity_queries(tenant_id, user_id, session_id),
        read_only_guard(guard, tenant_id, user_id),
        idempotency.principal_of(user_id=user_id),
        token=token,
    )


def principal(credentials: Credentials, rows: list[tuple | None]) -> tuple[User, ApiKey | None]:
    """The request's user (and key), from the identity rows after the tenant's; or Refused."""
    if credentials.api_key is not None:
        return key_principal(rows[0], credentials.api_key)[::-1]  # type: ignore[return-value]
    user = claimed_user(rows[0])
    open_session(rows[1])
    return user, None


def record_key_use(tenant_id: uuid.UUID, key: ApiKey) -> None:
    """last_used_at, at most once per API_KEY_LAST_USED_SECONDS, in a short transaction of its own
    after the request's (which stays READ ONLY for a read). A failure here loses one mark, not the answer."""
    if not api_keys.use_is_stale(key):
        return
    try:
        with tenant_transaction(
            tenant_id, [(api_keys.RECORD_USE_SQL, [tenant_id, key.pk, settings.API_KEY_LAST_USED_SECONDS])]
        ):
            pass
    except DatabaseError:
        logger.warning("api key last use not recorded", extra={"api_key": str(key.pk)})


class TenantContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX) or request.path_info.startswith(PUBLIC_API_PREFIXES):
            return self.get_response(request)
        kept = connections[DEFAULT_DB_ALIAS].connection  # the psycopg connection, if one is kept
        progress: dict[str, bool] = {}
        try:
            return self._as_tenant(request, progress)
        except Refused as refused:
            return refused.response()
        except (OperationalError, InterfaceError) as exc:
            if kept is not None and kept.closed and not progress:
                # The kept connection was dead before anything ran on it
                # (Django has dropped it): once more, on a new connection.
                # This replaces a health check before every request.
                return self._retried(request)
            return _database_failure(exc)

    def _retried(self, request: HttpRequest) -> HttpResponse:
        try:
            return self._as_tenant(request, {})
        except Refused as refused:
            return refused.response()
        except (OperationalError, InterfaceError) as exc:
            return _database_failure(exc)

    def _as_tenant(self, request: HttpRequest, progress: dict[str, bool]) -> HttpResponse:
        try:
            return self._as_tenant_keyed(request, progress)
        except IntegrityError as exc:
            # Only an Idempotency-Key's claim can fail here, on its key to `tenants`.
            if idempotency.HEADER in request.headers and not progress:
                raise Refused(401, RefusalReason.UNKNOWN_TENANT, "Token's tenant does not exist.") from exc
            raise

    def _as_tenant_keyed(self, request: HttpRequest, progress: dict[str, bool]) -> HttpResponse:
        guard = write_guard(request.method or "GET", request.path_info)
        credentials = credentials_of(request, guard)
        try:  # Idempotency-Key: its claim rides in the opening round trip (tenants.http.idempotency)
            claim = idempotency.claim_for(request, credentials.tenant_id, credentials.idempotency_principal)
        except idempotency.KeyRefused as refused:
            return idempotency.refusal(refused)
        # The tenant's rate-limit count goes to Redis now and is read once PostgreSQL has
        # answered the opening round trip: the two waits overlap (tenants.http.throttling).
        in_flight = TenantCountInFlight.start(credentials.tenant_id) if credentials.token is not None else None
        try:
            with tenant_transaction(
                credentials.tenant_id,
                credentials.queries + ([claim.query()] if claim else []),
                read_only=guard.read_only,
                read_only_guard=credentials.guard,
            ) as (_, rows):
                tenant_row, identity_rows, claim_rows = credentials.split(rows)
                progress["opened"] = True
                if in_flight is not None:
                    request.tenant_counted = in_flight.result()  # type: ignore[attr-defined]
                # A Refused leaving the block rolls the transaction back.
                tenant = claimed_tenant(tenant_row)
                user, api_key = principal(credentials, identity_rows)
                scoped = cast(TenantHttpRequest, request)
                scoped.tenant = tenant
                scoped.tenant_user = user
                scoped.token_claims = credentials.token.payload if credentials.token is not None else {}
                scoped.api_key = api_key
                response = idempotency.answered(claim, claim_rows, lambda: self.get_response(request))
                if response.status_code >= 400:
                    # A refused or failed request writes nothing. (Django may have
                    # turned an exception into this response before it reached us,
                    # and DRF only marks rollback under ATOMIC_REQUESTS.)
                    transaction.set_rollback(True)
        finally:
            if in_flight is not None:
                in_flight.abandon()  # an answer left unread (the database failed first)
        if api_key is not None and response.status_code < 500:
            record_key_use(tenant.pk, api_key)
        return response


def _database_failure(exc: Exception) -> HttpResponse:
    """The database went away (or a timeout fired) in our own queries or at
    COMMIT: 503 JSON at once; the next request connects afresh."""
    response = database_failure_response(exc)
    assert response is not None
    return response


class StaffDatabaseMiddleware:
    """Routes /admin/ requests to the owner connection (tenants.database.routers)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith("/admin/"):
            return self.get_response(request)
        if request.method == "POST" and request.path_info == "/admin/login/":
            # The most powerful accounts: the same per-address budget as the API's login.
            retry_after = LoginThrottle.spend_for(str(request.META.get("REMOTE_ADDR")))
            if retry_after is not None:
                response = HttpResponse("Too many login attempts; retry later.", status=429, content_type="text/plain")
                response["Retry-After"] = str(math.ceil(retry_after))
                return response
        token = _staff_request.set(True)
        try:
            return self.get_response(request)
        finally:
            _staff_request.reset(token)
