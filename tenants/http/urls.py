"""Routes of the tenants app: login and refresh (public, rate-limited per address) and the
tenant's users (bearer token; TenantContextMiddleware has set the tenant before the view runs)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.http.views import (
    ApiKeyViewSet,
    AuditEventViewSet,
    LogoutAllView,
    LogoutView,
    TenantTokenObtainView,
    TenantTokenRefreshView,
    UserViewSet,
)

auth_urlpatterns = [
    path("token/", TenantTokenObtainView.as_view(), name="token_obtain"),
    path("token/refresh/", TenantTokenRefreshView.as_view(), name="token_refresh"),
    # Not public: the caller's own sessions (TenantContextMiddleware lets /api/auth/token/ through only).
    path("logout/", LogoutView.as_view(), name="logout"),
    path("logout-all/", LogoutAllView.as_view(), name="logout_all"),
]

_router = SimpleRouter()
_router.register("users", UserViewSet, basename="user")
_router.register("audit-events", AuditEventViewSet, basename="audit-event")
_router.register("api-keys", ApiKeyViewSet, basename="api-key")
user_urlpatterns = _router.urls
