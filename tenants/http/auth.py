"""Per-tenant login and the token classes (simplejwt underneath).

- Login: `{"tenant": slug, "username", "password"}`. The user lookup runs
  inside the tenant's context, so it is itself under RLS. Every failure gives
  the same 401 message: no oracle for which slugs or usernames exist.
  The platform tenant (the staff) gets no API tokens at all: its login is
  refused like a wrong password, after the same password work, and the
  attempt is announced through Django's `user_login_failed` (platform_ops
  writes it to the audit trail), so it is no unaudited password oracle for the
  most powerful accounts.
- Tokens carry `tenant_id`, `user_id` and `sid`, the session the login
  started (tenants.sessions), and name their signing key in the header
  (`kid`, tenants.signing_keys). Refresh re-checks in the database that the
  tenant is active, the user still active in it and the session open (simplejwt
  alone would copy a stale claim into the new access token), and rotates the
  refresh token: a refresh token used twice ends its session.
- Every login attempt on a tenant that exists is in that tenant's audit log:
  `login.succeeded` (actor: the user) or `login.failed` (actor: the user, or
  `anonymous` for a username the tenant does not have), committed whatever
  the answer.
- `TenantJWTAuthentication` hands DRF the user that TenantContextMiddleware
  already verified, so a request costs one user query, made under RLS.
- `PlatformStaffBackend` logs staff into the admin: users of the platform
  tenant with is_staff, nobody else.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.signals import user_login_failed
from django.db import DEFAULT_DB_ALIAS
from django.http import HttpRequest
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework_simplejwt.exceptions import TokenError

from tenants import sessions
from tenants.context import tenant_context
from tenants.http.token_checks import checked_token
from tenants.http.tokens import SESSION_CLAIM, TENANT_CLAIM, ApiRefreshToken
from tenants.models import Tenant, User, normalize_slug
from tenants.tenant_audit import record_event, user_actor

__all__ = ["LOGIN_FAILED", "SESSION_CLAIM", "TENANT_CLAIM", "tokens_for"]

LOGIN_FAILED = "Invalid tenant, username or password."
ANONYMOUS_ACTOR = "anonymous"  # a failed login's actor when the username is not the tenant's


def _active_tenant(tenant_id: uuid.UUID | str | None = None, slug: str | None = None) -> Tenant | None:
    lookup: dict[str, uuid.UUID | str | None] = (
        {"pk": tenant_id} if tenant_id is not None else {"slug": normalize_slug(slug or "")}
    )
    return Tenant.objects.filter(status=Tenant.Status.ACTIVE, **lookup).first()


def _refresh_token(user_id: uuid.UUID, tenant_id: uuid.UUID, session_id: uuid.UUID) -> ApiRefreshToken:
    refresh = ApiRefreshToken()
    refresh[settings.SIMPLE_JWT["USER_ID_CLAIM"]] = str(user_id)
    refresh[TENANT_CLAIM] = str(tenant_id)
    refresh[SESSION_CLAIM] = str(session_id)
    return refresh


def tokens_for(user: User, *, using: str = DEFAULT_DB_ALIAS) -> dict[str, str]:
    """A new session of `user` (a row of its tenant, written on `using`) and its two tokens."""
    session_id = uuid.uuid4()
    refresh = _refresh_token(user.pk, user.tenant_id, session_id)
    with tenant_context(user.tenant_id, using=using):
        sessions.start_session(user, str(refresh["jti"]), session_id=session_id, using=using)
    # access_token copies every custom claim of the refresh token.
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


class TenantLoginSerializer(serializers.Serializer):
    tenant = serializers.SlugField(max_length=100, write_only=True)
    username = serializers.CharField(max_length=150, write_only=True)
    password = serializers.CharField(max_length=4096, write_only=True, style={"input_type": "password"})
    access = serializers.CharField(read_only=True)
    refresh = serializers.CharField(read_only=True)

    def validate(self, attrs: dict) -> dict:
        if attrs["tenant"] == settings.PLATFORM_TENANT_SLUG:
            User(password="").check_password(attrs["password"])
            user_login_failed.send(
                sender=__name__,
                credentials={"tenant": attrs["tenant"], "username": attrs["username"]},
                request=self.context.get("request"),
            )
            raise AuthenticationFailed(LOGIN_FAILED)
        tenant = _active_tenant(slug=attrs["tenant"])
        if tenant is None:
            # Same work as a real check, so timing does not tell slugs apart.
            User(password="").check_password(attrs["password"])
            raise AuthenticationFailed(LOGIN_FAILED)
        with tenant_context(tenant):
            user = User.objects.filter(username=attrs["username"]).first()
            if user is None:
                User(password="").check_password(attrs["password"])
                succeeded = False
            else:
                succeeded = user.check_password(attrs["password"]) and user.is_active
            # Committed with the block, whatever the answer: a failure is recorded too.
            record_event(
                "login.succeeded" if succeeded else "login.failed",
                actor=user_actor(user) if user is not None else ANONYMOUS_ACTOR,
                target_type="user",
                target_id=str(user.pk) if user is not None else "",
                details={"username": attrs["username"][:150]},
            )
        if not succeeded or user is None:
            raise AuthenticationFailed(LOGIN_FAILED)
        return tokens_for(user)


class TenantRefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)
    access = serializers.CharField(read_only=True)

    def validate(self, attrs: dict) -> dict:
        try:
            refresh = checked_token(ApiRefreshToken, attrs["refresh"])
        except TokenError as exc:
            raise AuthenticationFailed(f"Refresh token rejected: {exc}") from exc
        try:
            tenant_id = uuid.UUID(str(refresh.get(TENANT_CLAIM)))
            user_id = uuid.UUID(str(refresh.get(settings.SIMPLE_JWT["USER_ID_CLAIM"])))
            session_id = uuid.UUID(str(refresh.get(SESSION_CLAIM)))
        except ValueError as exc:
            raise AuthenticationFailed("Refresh token has no valid tenant_id, user_id or sid claim.") from exc
        tenant = _active_tenant(tenant_id=tenant_id)
        if tenant is None:
            raise AuthenticationFailed("The token's tenant is unknown or suspended.")
        successor = _refresh_token(user_id, tenant_id, session_id)
        with tenant_context(tenant):
            if not User.objects.filter(pk=user_id, is_active=True).exists():
                raise AuthenticationFailed("The token's user is unknown or inactive in its tenant.")
            # Committed with the block: a reused token's session stays ended.
            refused = sessions.rotate_refresh(session_id, user_id, str(refresh["jti"]), str(successor["jti"]))
        if refused is not None:
            raise AuthenticationFailed(refused)
        return {"access": str(successor.access_token), "refresh": str(successor)}


class TenantJWTAuthentication(BaseAuthentication):
    """The user TenantContextMiddleware verified; DRF re-checks nothing."""

    def authenticate(self, request: Request) -> tuple[User, dict] | None:
        user = getattr(request._request, "tenant_user", None)
        if user is None:
            return None
        return user, request._request.token_claims

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return 'Bearer realm="api"'


class PlatformStaffBackend(BaseBackend):
    """Admin login: staff users of the platform tenant only.

    Runs on the admin request's owner connection (tenants.database.routers), which
    holds the RLS bypass; hence .unscoped(), filtered to the platform tenant.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs,
    ) -> User | None:
        if not username or not password:
            return None
        user = (
            User.objects.unscoped()  # platform work: no tenant context in the admin
            .filter(
                tenant__slug=settings.PLATFORM_TENANT_SLUG,
                username=username,
                is_staff=True,
            )
            .first()
        )
        if user is None:
            User(password="").check_password(password)
            return None
        if user.check_password(password) and user.is_active:
            return user
        return None

    def get_user(self, user_id: uuid.UUID | str) -> User | None:
        return (
            User.objects.unscoped()  # session lookup for the admin, staff only
            .filter(
                pk=user_id,
                is_staff=True,
                is_active=True,
                tenant__slug=settings.PLATFORM_TENANT_SLUG,
            )
            .first()
        )
