"""Login, refresh and the users resource.

Login and refresh are public (TenantContextMiddleware lets /api/auth/ through) and fail
with one 401 body whatever was wrong; the users views run inside the request's tenant
context, so their queryset (the scoped manager) and RLS both limit them to the tenant.
"""

from typing import Any

import django_filters
from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.views import TokenViewBase

from tenants import services
from tenants.http.auth import TenantLoginSerializer, TenantRefreshSerializer
from tenants.http.serializers import (
    AuditEventSerializer,
    PasswordChangeSerializer,
    UserChangeSerializer,
    UserCreateSerializer,
    UserSerializer,
)
from tenants.http.throttling import LoginThrottle
from tenants.models import TenantAuditEvent, User
from tenants.tenant_audit import actor_of


class TenantScopedViewSetMixin:
    # Declare `queryset = Model.objects.none()`: it names the model for the
    # router and the schema, and selects nothing if used as is. Each request
    # reads `Model.objects` afresh, scoped to the request's tenant (and RLS).
    # (A comment, not a docstring: docstrings become OpenAPI descriptions.)

    queryset: QuerySet[Any]

    def get_queryset(self) -> QuerySet[Any]:
        return self.queryset.model.objects.all()


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
        services.user_change_own_password(request.user, **data, actor=actor_of(request), using=DEFAULT_DB_ALIAS)
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
