"""Login, refresh, logout, the users resource and the API keys.

Login and refresh are public (TenantContextMiddleware lets /api/auth/ through) and fail
with one 401 body whatever was wrong; the users views run inside the request's tenant
context, so their queryset (the scoped manager) and RLS both limit them to the tenant.
"""

import uuid
from typing import Any

import django_filters
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.views import TokenViewBase

from tenants import api_keys, services, sessions
from tenants.access import READ, SAFE_METHODS, Reach, rule_for
from tenants.http.auth import TenantLoginSerializer, TenantRefreshSerializer
from tenants.http.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    AuditEventSerializer,
    LogoutSerializer,
    NoInputSerializer,
    PasswordChangeSerializer,
    UserChangeSerializer,
    UserCreateSerializer,
    UserSerializer,
)
from tenants.http.throttling import LoginThrottle
from tenants.http.token_checks import checked_token
from tenants.http.tokens import SESSION_CLAIM, TENANT_CLAIM, ApiRefreshToken
from tenants.models import ApiKey, TenantAuditEvent, User, UserSession
from tenants.tenant_audit import actor_of


class TenantScopedViewSetMixin:
    # Declare `queryset = Model.objects.none()`: it names the model for the
    # router and the schema, and selects nothing if used as is. Each request
    # reads `Model.objects` afresh, scoped to the request's tenant (and RLS).
    # (A comment, not a docstring: docstrings become OpenAPI descriptions.)

    # Where the access table lets the caller's role read its own rows only
    # (tenants/access.py, e.g. a trader's API keys), a list holds only those.

    queryset: QuerySet[Any]

    def get_queryset(self) -> QuerySet[Any]:
        queryset = self.queryset.model.objects.all()
        request = getattr(self, "request", None)
        rule = rule_for(getattr(self, "access_resource", None), READ)
        if request is not None and request.method in SAFE_METHODS and rule is not None:
            if rule.reach(getattr(request.user, "role", "")) in (Reach.OWN, Reach.OWN_NEW):
                queryset = queryset.filter(user=request.user)
        return queryset


class TenantTokenObtainView(TokenViewBase):
    """Log in to one tenant: {"tenant": slug, "username", "password"} -> tokens."""

    serializer_class = TenantLoginSerializer
    throttle_classes = [LoginThrottle]


class TenantTokenRefreshView(TokenViewBase):
    """A new access token, after checking tenant and user are still active."""

    serializer_class = TenantRefreshSerializer
    throttle_classes = [LoginThrottle]


class UserViewSet(
    TenantScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's tenant's users (the manager and RLS both scope them).

    Everyone reads them; the tenant's admins add users (`POST`, within the
    seats of the tenant's tier) and change their role, `is_active` and email
    (`PATCH`); everyone changes their own password (`POST me/password/`).
    Who may: tenants/access.py; the rules: tenants.services.
    """

    access_resource = "users"  # its rules: tenants/access.py
    serializer_class = UserSerializer
    queryset = User.objects.none()
    lookup_value_regex = "[0-9a-fA-F-]{36}"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self):
        return {
            "create": UserCreateSerializer,
            "partial_update": UserChangeSerializer,
            "password": PasswordChangeSerializer,
        }.get(self.action, UserSerializer)

    def _input(self, request: Request) -> dict:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(request=UserCreateSerializer, responses={201: UserSerializer})
    def create(self, request: Request) -> Response:
        data = self._input(request)
        user = services.user_create(
            tenant=request.tenant,
            **data,
            actor=actor_of(request),
            using=DEFAULT_DB_ALIAS,
        )
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=UserChangeSerializer, responses={200: UserSerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        user = self.get_object()
        data = self._input(request)
        user = services.user_change(
            user, data, acting_user=request.user, actor=actor_of(request), using=DEFAULT_DB_ALIAS
        )
        return Response(UserSerializer(user).data)

    @action(detail=False)
    def me(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)

    @extend_schema(request=PasswordChangeSerializer, responses={204: None})
    @action(detail=False, methods=["post"], url_path="me/password")
    def password(self, request: Request) -> Response:
        """Change your own password: the old one, and a new one that passes the password rules (400 names the rule)."""
        data = self._input(request)
        services.user_change_own_password(
            request.user,
            **data,
            actor=actor_of(request),
            keep_session=_session_of(request),
            using=DEFAULT_DB_ALIAS,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditEventFilter(django_filters.FilterSet):
    # Equality and timestamptz comparison only: LEAKPROOF operators, applied next to the RLS policy.
    action = django_filters.CharFilter(field_name="action", max_length=64)
    actor = django_filters.CharFilter(field_name="actor", max_length=128)
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = TenantAuditEvent
        fields = ["action", "actor", "since"]


class AuditEventViewSet(TenantScopedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The tenant's audit log, newest first (admins only): who changed what in the tenant.

    Filters: `action` (e.g. `trade.changed`), `actor` (a user's id, `api_key:<id>` or
    `system`), `since` (ISO 8601). Cursor-paginated. Nothing here is ever changed or deleted.
    """

    access_resource = "audit-events"  # its rules: tenants/access.py
    serializer_class = AuditEventSerializer
    queryset = TenantAuditEvent.objects.none()
    filterset_class = AuditEventFilter


def _session_of(request: Request) -> uuid.UUID | None:
    """The session of the request's token (None through an API key)."""
    claim = (getattr(request._request, "token_claims", None) or {}).get(SESSION_CLAIM)
    return uuid.UUID(str(claim)) if claim else None


class LogoutView(APIView):
    """End the session of a refresh token of yours: its refresh and access tokens are refused from the next request.

    `{"refresh"}` -> 204 (also when that session had ended already). A refresh
    token of another user is a 403 and ends nothing. People only: an API key
    is refused.
    """

    access_resource = "sessions"  # its rules: tenants/access.py
    queryset = UserSession.objects.none()

    @extend_schema(request=LogoutSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        serializer = LogoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            refresh = checked_token(ApiRefreshToken, serializer.validated_data["refresh"])
        except TokenError as exc:
            raise ValidationError({"refresh": f"Refresh token rejected: {exc}"}) from exc
        claims = refresh.payload
        if claims.get(TENANT_CLAIM) != str(request.tenant.pk) or claims.get(
            settings.SIMPLE_JWT["USER_ID_CLAIM"]
        ) != str(request.user.pk):
            raise PermissionDenied("This refresh token is not yours: no session was ended.", code="not_own")
        try:
            session_id = uuid.UUID(str(claims.get(SESSION_CLAIM)))
        except ValueError as exc:
            raise ValidationError({"refresh": "Refresh token has no session (sid claim)."}) from exc
        sessions.end_session(
            session_id, request.user, sessions.EndReason.LOGOUT, actor=actor_of(request), using=DEFAULT_DB_ALIAS
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """End every session of yours, this one included: every token of yours is refused from the next request."""

    access_resource = "sessions"  # its rules: tenants/access.py
    queryset = UserSession.objects.none()

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        NoInputSerializer(data=request.data or {}).is_valid(raise_exception=True)
        sessions.end_sessions_of(
            request.user, sessions.EndReason.LOGOUT_ALL, actor=actor_of(request), using=DEFAULT_DB_ALIAS
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyViewSet(
    TenantScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """API keys for machine clients: `Authorization: Api-Key <key>` acts as the key's user, within its scopes.

    `POST` makes a key for yourself (`key` is in that answer only; a viewer's
    keys hold `read` only); an admin lists and revokes (`DELETE`) every key of
    the tenant, everyone else their own. Revocation holds from the next request.
    """

    access_resource = "api-keys"  # its rules: tenants/access.py
    serializer_class = ApiKeySerializer
    queryset = ApiKey.objects.none()
    lookup_value_regex = "[0-9a-fA-F-]{36}"
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_serializer_class(self):
        return ApiKeyCreateSerializer if self.action == "create" else ApiKeySerializer

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request: Request) -> Response:
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, secret = api_keys.create_api_key(
            request.user, **serializer.validated_data, actor=actor_of(request), using=DEFAULT_DB_ALIAS
        )
        key.key = secret  # type: ignore[attr-defined]  # shown once, in this answer
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        api_keys.revoke_api_key(self.get_object(), actor=actor_of(request), using=DEFAULT_DB_ALIAS)
        return Response(status=status.HTTP_204_NO_CONTENT)
