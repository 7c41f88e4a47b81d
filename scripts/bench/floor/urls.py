from django.urls import include, path
from rest_framework.routers import SimpleRouter

from bench.floor.views import TradeViewSet
from tenants.http.health import health

router = SimpleRouter()
router.register("trades", TradeViewSet, basename="trade")
urlpatterns = [path("health", health, name="health"), path("api/", include(router.urls))]
