from rest_framework.routers import SimpleRouter

from trading import views

router = SimpleRouter()
router.register("trades", views.TradeViewSet, basename="trade")
router.register("orders", views.OrderViewSet, basename="order")
router.register("positions", views.PositionViewSet, basename="position")
router.register("portfolio-snapshots", views.PortfolioSnapshotViewSet, basename="portfolio-snapshot")
router.register("risk-metrics", views.RiskMetricViewSet, basename="risk-metric")
router.register("agent-signals", views.AgentSignalViewSet, basename="agent-signal")
urlpatterns = router.urls
