"""Where the tenant of a request is decided: the verified JWT, nothing else.

For every /api/ route except login, token refresh and the schema,
TenantContextMiddleware
1. verifies the bearer token with simplejwt (signature, expiry, type);
   `alg: none`, wrong keys, tampering, expiry -> 401;
2. takes the `tenant_id` and `user_id` claims: missing or not a UUID -> 401;
3. enters tenant_transaction(claimed tenant) with the tenant and user lookups
   riding in its opening round trip: BEGIN, `SET LOCAL
   app.current_tenant_id`, the tenant row, the user row (under RLS), one
   pipeline, one network round trip (tenants.database.tenant_setting.open_tenant_transaction).
   The same trip makes the transaction READ ONLY where the request may not
   write: `BEGIN READ ONLY` for GET/HEAD/OPTIONS, and for a write, a guard
   statement that turns it read-only unless the user's role is one that may
   write through the route (tenants.access): a write that slips past the API
   check is refused by PostgreSQL (answered 403 by alphapulse.exceptions);
   unknown tenant -> 401, suspended -> 403; a user that is not in the
   claimed tenant -> 401, an inactive one -> 403. Both are read afresh on
   every request, so a suspension or deactivation holds from the next one;
4. runs the view inside that same transaction; any 4xx/5xx rolls it back.

No health-check `SELECT 1` before each request (CONN_HEALTH_CHECKS is off for
the app connection): when a kept connection turns out dead in that opening
round trip (a database restart, a dropped idle connection), nothing has run
yet, so the request is retried once on a new connection; a database that is
still away answers 503 JSON.

DRF authenticates later, inside the view; it takes the user found here
(tenants.http.auth.TenantJWTAuthentication). All refusals are JSON {"detail"}.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any, cast

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, InterfaceError, OperationalError, connections, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from psycopg import sql
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from alphapulse.exceptions import database_failure_response
from tenants.context import tenant_transaction
from tenants.database.routers import _staff_request
from tenants.database.tenant_setting import Query
from tenants.http import idempotency
from tenants.http.auth import TENANT_CLAIM
from tenants.http.permissions import WriteGuard, write_guard
from tenants.http.throttling import LoginThrottle
from tenants.http.token_checks import checked_token
from tenants.models import Tenant, User

API_PREFIX = "/api/"
PUBLIC_API_PREFIXES = ("/api/auth/", "/api/schema/", "/api/docs/")


class TenantHttpRequest(HttpRequest):
    """An API request once TenantContextMiddleware has let it through."""

    tenant: Tenant
    tenant_user: User
    token_claims: dict[str, Any]


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


def verified_claims(request: HttpRequest) -> AccessToken:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if not header:
        raise Refused(
            401,
            RefusalReason.NO_CREDENTIALS,
            "Authentication credentials were not provided: send 'Authorization: Bearer <access token>'.",
        )
    if scheme not in settings.SIMPLE_JWT["AUTH_HEADER_TYPES"] or not raw.strip():
        raise Refused(401, RefusalReason.BAD_AUTH_HEADER, "Authorization header must be 'Bearer <access token>'.")
    try:
        return checked_token(AccessToken, raw.strip())
    except TokenError as exc:
        raise Refused(401, RefusalReason.TOKEN_REJECTED, f"Token rejected: {exc}") from exc


def claimed_tenant_id(token: AccessToken) -> uuid.UUID:
    claim = token.get(TENANT_CLAIM)
    if not claim:
        raise Refused(401, RefusalReason.NO_TENANT_CLAIM, "Token has no tenant_id claim.")
    try:
        return uuid.UUID(str(claim))
    except ValueError as exc:
        raise Refused(401, RefusalReason.BAD_TENANT_CLAIM, "Token's tenant_id claim is not a UUID.") from exc


def claimed_user_id(token: AccessToken) -> uuid.UUID:
    try:
        return uuid.UUID(str(token.get(settings.SIMPLE_JWT["USER_ID_CLAIM"])))
    except ValueError as exc:
        raise Refused(401, RefusalReason.BAD_USER_CLAIM, "Token's user_id claim is not a UUID.") from exc


def _select_row(model: type[Tenant] | type[User], *where: str) -> str:
    """SELECT <every column of model> FROM <its table> WHERE <col> = %s AND ..."""
    columns = sql.SQL(", ").join(sql.Identifier(field.column) for field in model._meta.concrete_fields)
    condition = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(column)) for column in where)
    query = sql.SQL("SELECT {} FROM {} WHERE {}").format(columns, sql.Identifier(model._meta.db_table), condition)
    return query.as_string(None)


# The user by tenant and id: the explicit tenant filter (which routes it on
# Citus) as well as RLS, as the tenant-scoped manager would write it.
TENANT_ROW_SQL = _select_row(Tenant, "id")
USER_ROW_SQL = _select_row(User, "tenant_id", "id")


def identity_queries(tenant_id: uuid.UUID, user_id: uuid.UUID) -> list[Query]:
    """What the request must read before its view: the claimed tenant and the token's user."""
    return [(TENANT_ROW_SQL, [tenant_id]), (USER_ROW_SQL, [tenant_id, user_id])]


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


def read_only_guard(guard: WriteGuard, tenant_id: uuid.UUID, user_id: uuid.UUID) -> Query | None:
    if guard.writers is None:
        return None
    return (READ_ONLY_GUARD_SQL, [tenant_id, user_id, sorted(guard.writers)])


def _instance(model: type[Tenant] | type[User], row: tuple) -> Any:
    names = [field.attname for field in model._meta.concrete_fields]
    return model.from_db(DEFAULT_DB_ALIAS, names, row)


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
        token = verified_claims(request)
        tenant_id, user_id = claimed_tenant_id(token), claimed_user_id(token)
        guard = write_guard(request.method or "GET", request.path_info)
        try:  # Idempotency-Key: its claim rides in the opening round trip (tenants.http.idempotency)
            claim = idempotency.claim_for(request, tenant_id, user_id)
        except idempotency.KeyRefused as refused:
            return idempotency.refusal(refused)
        with tenant_transaction(
            tenant_id,
            identity_queries(tenant_id, user_id) + ([claim.query()] if claim else []),
            read_only=guard.read_only,
            read_only_guard=read_only_guard(guard, tenant_id, user_id),
        ) as (_, (tenant_row, user_row, *claim_rows)):
            progress["opened"] = True
            # A Refused leaving the block rolls the transaction back.
            tenant, user = claimed_tenant(tenant_row), claimed_user(user_row)
            scoped = cast(TenantHttpRequest, request)
            scoped.tenant = tenant
            scoped.tenant_user = user
            scoped.token_claims = token.payload
            response = idempotency.answered(claim, claim_rows, lambda: self.get_response(request))
            if response.status_code >= 400:
                # A refused or failed request writes nothing. (Django may have
                # turned an exception into this response before it reached us,
                # and DRF only marks rollback under ATOMIC_REQUESTS.)
                transaction.set_rollback(True)
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
