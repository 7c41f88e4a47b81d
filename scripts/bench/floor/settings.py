"""The product's settings, minus everything multi-tenant (see bench.floor)."""

from alphapulse.settings import *  # noqa: F403
from alphapulse.settings import MIDDLEWARE, REST_FRAMEWORK

ROOT_URLCONF = "bench.floor.urls"
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("tenants.")]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_AUTHENTICATION_CLASSES": ["bench.floor.auth.StockJWTAuthentication"],
    # A single-tenant app has no per-tenant budget, and stock DRF's permission: any signed-in
    # user (the product's RoleAccess reads the tenant user the tenant middleware sets).
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}
RLS_ENABLED = False
