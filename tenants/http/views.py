"""Login, refresh and the users resource.

Login and refresh are public (TenantContextMiddleware lets /api/auth/ through) and fail
with one 401 body whatever was wrong; the users views run inside the request's tenant
context, so their queryset (the scoped manager) and RLS both limit them to the tenant.
"""

from typing import Any

from django.db.models import QuerySet
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.views import TokenViewBase

from tenants.http.auth import TenantLoginSerializer, TenantRefreshSerializer
from tenants.http.serializers import UserSerializer
from tenants.http.throttling import LoginThrottle
from tenants.models import User


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
    """The caller's tenant's users (the manager and RLS both scope them)."""

    access_resource = "users"  # its rules: tenants/access.py
    serializer_class = UserSerializer
    queryset = User.objects.none()

    @action(detail=False)
    def me(self, request: Request) -> Response:
        return Response(self.get_serializer(request.user).data)
