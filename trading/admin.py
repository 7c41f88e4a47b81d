"""Read-only browsing of every tenant's trading data, for platform staff.

Trading rows change only through the API, as their tenant; the admin can look
(with a tenant filter and a symbol search) but never add, edit or delete.
"""

from __future__ import annotations

from typing import ClassVar

from django.contrib import admin
from django.http import HttpRequest

from tenants.read_only_admin import ReadOnlyModelAdmin
from trading.models import AgentSignal, Order, PortfolioSnapshot, Position, RiskMetric, Trade


class ReadOnlyTradingAdmin(ReadOnlyModelAdmin):
    list_filter: ClassVar[tuple[str, ...]] = ("tenant",)
    # The tenant by join (a reference table on Citus: joins with it stay on
    # the worker); the user by a second query (`id IN (...)`). A join on
    # user_id alone is not on the distribution column, which Citus refuses.
    list_select_related = ("tenant",)
    list_per_page = 50
    # No full count(*) beside the filtered one: tables hold millions of rows.
    show_full_result_count = False
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("user")

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff


@admin.register(Trade)
class TradeAdmin(ReadOnlyTradingAdmin):
    list_display = ("created_at", "tenant", "user", "symbol", "side", "quantity", "price", "executed_at")
    list_filter = ("tenant", "side")
    search_fields = ("symbol",)


@admin.register(Order)
class OrderAdmin(ReadOnlyTradingAdmin):
    list_display = ("created_at", "tenant", "user", "symbol", "side", "order_type", "quantity", "status")
    list_filter = ("tenant", "status", "side", "order_type")
    search_fields = ("symbol",)


@admin.register(Position)
class PositionAdmin(ReadOnlyTradingAdmin):
    list_display = ("symbol", "tenant", "user", "quantity", "average_price", "updated_at")
    search_fields = ("symbol",)


@admin.register(PortfolioSnapshot)
class PortfolioSnapshotAdmin(ReadOnlyTradingAdmin):
    list_display = ("taken_at", "tenant", "user", "total_value", "cash", "positions_value")


@admin.register(RiskMetric)
class RiskMetricAdmin(ReadOnlyTradingAdmin):
    list_display = ("as_of", "tenant", "user", "metric", "value", "window_days")
    list_filter = ("tenant", "metric")


@admin.register(AgentSignal)
class AgentSignalAdmin(ReadOnlyTradingAdmin):
    list_display = ("created_at", "tenant", "agent_name", "symbol", "signal", "confidence")
    list_filter = ("tenant", "signal")
    search_fields = ("symbol", "agent_name")
