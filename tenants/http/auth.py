"""Per-tenant login and the token classes (simplejwt underneath).

- Login: `{"tenant": slug, "username", "password"}`. The user lookup runs
  inside the tenant's context, so it is itself under RLS. Every failure gives
  the same 401 message: no oracle for which slugs or usernames exist.
  The platform tenant (the staff) gets no API tokens at all: its login is
  refused like a wrong password, after the same password work, and the
  attempt is announced through Django's `user_login_failed` (platform_ops
  writes it to the audit trail), so it is no unaudited password oracle for the
  most powerful accounts.
- Tokens carry `tenant_id` and `user_id`. Refresh re-checks in the database
  that the tenant is active and the user still active in it (simplejwt alone
  would copy a stale claim into the new access token).
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
from django.http import HttpRequest
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from tenants.context import tenant_context
from tenants.http.token_checks import checked_token
from tenants.models import Tenant, User

TENANT_CLAIM = "tenant_id"
LOGIN_FAILED = "Invalid tenant, username or password."


def _active_tenant(tenant_id: uuid.UUID | str | None = None, slug: str | None = None) -> Tenant | None:
    lookup: dict[str, uuid.UUID | str | None] = {"pk": tenant_id} if tenant_id is not None else {"slug": slug}
    return Tenant.objects.filter(status=Tenant.Status.ACTIVE, **lookup).first()


def tokens_for(user: User) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    refresh[TENANT_CLAIM] = str(user.tenant_id)
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
                raise AuthenticationFailed(LOGIN_FAILED)
            if not user.check_password(attrs["password"]) or not user.is_active:
                raise AuthenticationFailed(LOGIN_FAILED)
        return tokens_for(user)


class TenantRefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096, write_only=True)
    access = serializers.CharField(read_only=True)

    def validate(self, attrs: dict) -> dict:
        try:
            refresh = checked_token(RefreshToken, attrs["refresh"])
        except TokenError as exc:
            raise AuthenticationFailed(f"Refresh token rejected: {exc}") from exc
        try:
            tenant_id = uuid.UUID(str(refresh.get(TENANT_CLAIM)))
            user_id = uuid.UUID(str(refresh.get(settings.SIMPLE_JWT["USER_ID_CLAIM"])))
        except ValueError as exc:
            raise AuthenticationFailed("Refresh token has no valid tenant_id or user_id claim.") from exc
        tenant = _active_tenant(tenant_id=tenant_id)
        if tenant is None:
            raise AuthenticationFailed("The token's tenant is unknown or suspended.")
        with tenant_context(tenant):
            if not User.objects.filter(pk=user_id, is_active=True).exists():
                raise AuthenticationFailed("The token's user is unknown or inactive in its tenant.")
        return {"access": str(refresh.access_token)}


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
