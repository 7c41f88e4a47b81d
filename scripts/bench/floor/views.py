"""The trades resource with stock DRF: a ModelViewSet, the product's serializer,
filters and pagination, the rows of the user's account.

The single-tenant app still reads one account's rows, by the same index as
the product (`tenant_id = <the user's tenant>`, taken from the user row
simplejwt loads anyway): the floor differs from the product in what multi-
tenancy adds around the query, not in the query.
"""

from __future__ import annotations

from rest_framework import viewsets

from trading.filters import TradeFilter
from trading.models import Trade
from trading.serializers import TradeSerializer


class TradeViewSet(viewsets.ModelViewSet):
    serializer_class = TradeSerializer
    filterset_class = TradeFilter
    lookup_value_regex = "[0-9a-fA-F-]{36}"
    queryset = Trade.all_tenants.none()

    def get_queryset(self):
        return Trade.all_tenants.filter(tenant_id=self.request.user.tenant_id)

    def perform_create(self, serializer):
        serializer.save(user=self.request.user, tenant_id=self.request.user.tenant_id)
