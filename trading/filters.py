"""List filters. Every one compares with a LEAKPROOF operator (text, uuid and
timestamptz equality/ordering), so PostgreSQL can apply it next to the RLS
policy on the tenant index; numeric range filters would be evaluated after
the policy, row by row, so there are none (docs/design.md, "Filters use
only LEAKPROOF operators")."""

import django_filters

from trading import models


class TenantRowFilter(django_filters.FilterSet):
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")


def _symbol() -> django_filters.CharFilter:
    return django_filters.CharFilter(field_name="symbol", method="filter_symbol", max_length=16)


class SymbolFilterMixin(django_filters.FilterSet):
    symbol = _symbol()

    def filter_symbol(self, queryset, name, value):
        return queryset.filter(symbol=value.strip().upper())


class TradeFilter(SymbolFilterMixin, TenantRowFilter):
    # When the trade happened, which a client may record later than created_at.
    executed_after = django_filters.IsoDateTimeFilter(field_name="executed_at", lookup_expr="gte")
    executed_before = django_filters.IsoDateTimeFilter(field_name="executed_at", lookup_expr="lt")

    class Meta:
        model = models.Trade
        fields = ("symbol", "side")


class OrderFilter(SymbolFilterMixin, TenantRowFilter):
    class Meta:
        model = models.Order
        fields = ("symbol", "side", "status", "order_type")


class PositionFilter(SymbolFilterMixin, TenantRowFilter):
    class Meta:
        model = models.Position
        fields = ("symbol",)


class PortfolioSnapshotFilter(TenantRowFilter):
    class Meta:
        model = models.PortfolioSnapshot
        fields = ()


class RiskMetricFilter(TenantRowFilter):
    class Meta:
        model = models.RiskMetric
        fields = ("metric",)


class AgentSignalFilter(SymbolFilterMixin, TenantRowFilter):
    class Meta:
        model = models.AgentSignal
        fields = ("symbol", "signal", "agent_name")
