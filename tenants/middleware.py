"""Where the tenant of a request is decided: the verified JWT, nothing else.

For every /api/ route except login, token refresh and the schema,
TenantContextMiddleware
1. verifies the bearer token with simplejwt (signature, expiry, type);
   `alg: none`, wrong keys, tampering, expiry -> 401;
2. takes the `tenant_id` claim: missing, not a UUID, unknown tenant -> 401;
   suspended tenant -> 403;
3. enters tenant_context(tenant): opens the request's transaction and sets
   app.current_tenant_id transaction-locally with a bound parameter;
4. loads the token's user inside that context (so under RLS): a user that is
   not in the claimed tenant -> 401, an inactive one -> 403;
5. runs the view inside that same transaction; any 4xx/5xx rolls it back.

DRF authenticates later, inside the view; it takes the user found here
(tenants.auth.TenantJWTAuthentication). All refusals are JSON {"detail"}.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from alphapulse.exceptions import database_failure_response
from tenants.auth import TENANT_CLAIM
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tenants.routers import _staff_request
from tenants.throttling import LoginThrottle
from tenants.token_checks import checked_token

API_PREFIX = "/api/"
PUBLIC_API_PREFIXES = ("/api/auth/", "/api/schema/", "/api/docs/")


class TenantHttpRequest(HttpRequest):
    """An API request once TenantContextMiddleware has let it through."""

    tenant: Tenant
    tenant_user: User
    token_claims: dict[str, Any]


class Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def response(self) -> JsonResponse:
        response = JsonResponse({"detail": self.detail}, status=self.status)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response


def verified_claims(request: HttpRequest) -> AccessToken:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if not header:
        raise Refused(
            401,
            "Authentication credentials were not provided: send 'Authorization: Bearer <access token>'.",
        )
    if scheme not in settings.SIMPLE_JWT["AUTH_HEADER_TYPES"] or not raw.strip():
        raise Refused(401, "Authorization header must be 'Bearer <access token>'.")
    try:
        return checked_token(AccessToken, raw.strip())
    except TokenError as exc:
        raise Refused(401, f"Token rejected: {exc}") from exc


def claimed_tenant(token: AccessToken) -> Tenant:
    claim = token.get(TENANT_CLAIM)
    if not claim:
        raise Refused(401, "Token has no tenant_id claim.")
    try:
        tenant_id = uuid.UUID(str(claim))
    except ValueError as exc:
        raise Refused(401, "Token's tenant_id claim is not a UUID.") from exc
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        raise Refused(401, "Token's tenant does not exist.")
    if not tenant.is_active:
        raise Refused(403, f"Tenant '{tenant.slug}' is suspended.")
    return tenant


def claimed_user(token: AccessToken) -> User:
    """The token's user, looked up inside the tenant context (so under RLS)."""
    try:
        user_id = uuid.UUID(str(token.get(settings.SIMPLE_JWT["USER_ID_CLAIM"])))
    except ValueError as exc:
        raise Refused(401, "Token's user_id claim is not a UUID.") from exc
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise Refused(401, "Token's user is not a user of its tenant.")
    if not user.is_active:
        raise Refused(403, f"User '{user.username}' is inactive.")
    return user


class TenantContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX) or request.path_info.startswith(PUBLIC_API_PREFIXES):
            return self.get_response(request)
        try:
            return self._as_tenant(request)
        except Refused as refused:
            return refused.response()
        except (OperationalError, InterfaceError) as exc:
            # The database went away (or a timeout fired) in our own queries or
            # at COMMIT: 503 JSON at once; the connection is replaced on the
            # next request (CONN_HEALTH_CHECKS), no worker restart needed.
            response = database_failure_response(exc)
            assert response is not None
            return response

    def _as_tenant(self, request: HttpRequest) -> HttpResponse:
        token = verified_claims(request)
        tenant = claimed_tenant(token)
        with tenant_context(tenant):
            user = claimed_user(token)  # a Refused leaving the block rolls it back
            scoped = cast(TenantHttpRequest, request)
            scoped.tenant = tenant
            scoped.tenant_user = user
            scoped.token_claims = token.payload
            response = self.get_response(request)
            if response.status_code >= 400:
                # A refused or failed request writes nothing. (Django may have
                # turned an exception into this response before it reached us,
                # and DRF only marks rollback under ATOMIC_REQUESTS.)
                transaction.set_rollback(True)
        return response


class StaffDatabaseMiddleware:
    """Routes /admin/ requests to the owner connection (tenants.routers)."""

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
