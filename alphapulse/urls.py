from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from platform_ops.metrics import metrics_view
from tenants.http.health import health
from tenants.http.jwks import jwks
from tenants.http.urls import auth_urlpatterns, user_urlpatterns

urlpatterns = [
    path("health", health, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path(".well-known/jwks.json", jwks, name="jwks"),
    path("api/auth/", include(auth_urlpatterns)),
    path("api/", include(user_urlpatterns)),
    path("api/", include("trading.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
]

handler400 = "alphapulse.exceptions.json_400"
handler404 = "alphapulse.exceptions.json_404"
handler500 = "alphapulse.exceptions.json_500"
