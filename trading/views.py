"""The six domain resources. Thin: each viewset names its model, serializer and
filters; the tenant scoping comes from TenantScopedViewSetMixin (the tenant
manager) and, underneath, from RLS. Another tenant's id is simply not found:
404 with the same body as an id that never existed."""

from rest_framework import viewsets

from tenants.views import TenantScopedViewSetMixin
from trading import filters, models, serializers


class TenantRowViewSet(TenantScopedViewSetMixin, viewsets.ModelViewSet):
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def perform_create(self, serializer):
        # The tenant is filled from the request's context by TenantModel.save.
        serializer.save(user=self.request.user)


class TradeViewSet(TenantRowViewSet):
    queryset = models.Trade.objects.none()
    serializer_class = serializers.TradeSerializer
    filterset_class = filters.TradeFilter


class OrderViewSet(TenantRowViewSet):
    queryset = models.Order.objects.none()
    serializer_class = serializers.OrderSerializer
    filterset_class = filters.OrderFilter


class PositionViewSet(TenantRowViewSet):
    queryset = models.Position.objects.none()
    serializer_class = serializers.PositionSerializer
    filterset_class = filters.PositionFilter


class PortfolioSnapshotViewSet(TenantRowViewSet):
    queryset = models.PortfolioSnapshot.objects.none()
    serializer_class = serializers.PortfolioSnapshotSerializer
    filterset_class = filters.PortfolioSnapshotFilter


class RiskMetricViewSet(TenantRowViewSet):
    queryset = models.RiskMetric.objects.none()
    serializer_class = serializers.RiskMetricSerializer
    filterset_class = filters.RiskMetricFilter


class AgentSignalViewSet(TenantRowViewSet):
    queryset = models.AgentSignal.objects.none()
    serializer_class = serializers.AgentSignalSerializer
    filterset_class = filters.AgentSignalFilter
