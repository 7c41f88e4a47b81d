"""The six domain resources. Thin: each viewset names its model, serializer and
filters; the tenant scoping comes from TenantScopedViewSetMixin (the tenant
manager) and, underneath, from RLS. Another tenant's id is simply not found:
404 with the same body as an id that never existed."""

import uuid

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response

from tenants.access import CHANGE, EXECUTION_STATUSES
from tenants.http.views import TenantScopedViewSetMixin
from tenants.tenant_audit import actor_of
from trading import fills, filters, models, positions, serializers, services


class OrderConflict(APIException):
    """trading.services.OrderNotDeletable as HTTP: the order stays as it is."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "order_not_deletable"


class FillConflict(APIException):
    """trading.fills.FillRefused as HTTP: the order cannot take the fill; nothing was written."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "fill_refused"


class TenantRowViewSet(TenantScopedViewSetMixin, viewsets.ModelViewSet):
    """Rows of the caller's tenant; `tenant_id` and `user` are set from the token, never from the body."""

    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def perform_create(self, serializer):
        # The tenant is filled from the request's context by TenantModel.save.
        serializer.save(user=self.request.user)


class TradeViewSet(TenantRowViewSet):
    """Executed trades of the caller's tenant, newest first. Filters: symbol, side, created_at and
    executed_at ranges.

    Admins and traders book trades; only an admin amends or deletes one, and
    each amendment or deletion is recorded in the audit log with before and after.
    """

    access_resource = "trades"  # its rules: tenants/access.py
    queryset = models.Trade.objects.none()
    serializer_class = serializers.TradeSerializer
    filterset_class = filters.TradeFilter

    def perform_create(self, serializer):
        # The trade and its position's move: one statement (trading.positions.book_trade).
        serializer.instance = positions.book_trade(user_id=self.request.user.pk, **serializer.validated_data).trade

    def perform_update(self, serializer):
        serializer.instance = services.trade_amend(
            serializer.instance, serializer.validated_data, actor=actor_of(self.request)
        )

    def perform_destroy(self, instance):
        services.trade_delete(instance, actor=actor_of(self.request))


class OrderViewSet(TenantRowViewSet):
    """Orders of the caller's tenant.

    A limit order needs `limit_price`, a market order has none. Status moves
    new -> partially_filled -> filled, or to cancelled / rejected; only a `new`
    order may change its terms or be deleted (409 otherwise). A trader changes
    or cancels only their own orders while new; only an admin moves an order
    to partially_filled, filled or rejected (recorded as `order.executed`).
    """

    access_resource = "orders"  # its rules: tenants/access.py
    queryset = models.Order.objects.none()
    serializer_class = serializers.OrderSerializer
    filterset_class = filters.OrderFilter

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.request.method in ("PUT", "PATCH", "DELETE"):
            # The status rules read the row and then write it: lock it for the
            # request's transaction, so two requests cannot both pass the check
            # (say, cancel and fill the same new order).
            queryset = queryset.select_for_update()
        return queryset

    def access_action(self, request):
        """A change that moves the order to partially_filled, filled or rejected is `execute`."""
        if self.action in ("update", "partial_update") and isinstance(request.data, dict):
            if request.data.get("status") in EXECUTION_STATUSES:
                return "execute"
            return CHANGE
        return None

    def perform_update(self, serializer):
        serializer.instance = services.order_change(
            serializer.instance, serializer.validated_data, actor=actor_of(self.request)
        )

    @extend_schema(
        summary="Fill an order",
        description="Books a trade of `quantity` at `price` for the order's user, symbol and side, grows the "
        "order's `filled_quantity`, moves its status to partially_filled or filled and moves the position, in one "
        "transaction. 409 (nothing written) for a fill beyond the remaining quantity, beyond a limit order's limit "
        "price, or of an order that is not new or partially_filled.",
        request=serializers.FillSerializer,
        # 400, 404 and 409 (the order cannot take this fill; nothing written): alphapulse.openapi's hook.
        responses={201: serializers.FillResultSerializer},
    )
    @action(detail=True, methods=["post"], url_path="fills", filter_backends=[], pagination_class=None)
    def fills(self, request, pk=None):
        body = serializers.FillSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            done = fills.fill_order(self._order_id(pk), **body.validated_data, actor=actor_of(request))
        except fills.OrderNotFound as missing:
            raise NotFound(str(missing)) from missing
        except fills.FillRefused as refused:
            raise FillConflict(str(refused)) from refused
        result = {
            "trade": serializers.TradeSerializer(done.trade).data,
            "order": serializers.OrderSerializer(done.order).data,
            "position": serializers.PositionSerializer(done.position).data,
        }
        return Response(result, status=status.HTTP_201_CREATED)

    @staticmethod
    def _order_id(pk: str | None) -> uuid.UUID:
        try:
            return uuid.UUID(str(pk))
        except ValueError as bad:
            raise NotFound("No Order matches the given query.") from bad

    def perform_destroy(self, instance):
        try:
            services.order_check_deletable(instance)
        except services.OrderNotDeletable as refused:
            raise OrderConflict(str(refused)) from refused
        super().perform_destroy(instance)


class PositionViewSet(TenantRowViewSet):
    """Positions of the caller's tenant, one per (user, symbol); a negative quantity is a short."""

    access_resource = "positions"  # its rules: tenants/access.py
    queryset = models.Position.objects.none()
    serializer_class = serializers.PositionSerializer
    filterset_class = filters.PositionFilter


class PortfolioSnapshotViewSet(TenantRowViewSet):
    """Point-in-time portfolio values of the caller's tenant."""

    access_resource = "portfolio-snapshots"  # its rules: tenants/access.py
    queryset = models.PortfolioSnapshot.objects.none()
    serializer_class = serializers.PortfolioSnapshotSerializer
    filterset_class = filters.PortfolioSnapshotFilter

    def perform_update(self, serializer):
        # A corrected row is a hand-written one: the job's next run for its key replaces it.
        serializer.save(computed=False)


class RiskMetricViewSet(TenantRowViewSet):
    """Risk metrics (VaR, drawdown, ...) of the caller's tenant."""

    access_resource = "risk-metrics"  # its rules: tenants/access.py
    queryset = models.RiskMetric.objects.none()
    serializer_class = serializers.RiskMetricSerializer
    filterset_class = filters.RiskMetricFilter

    def perform_update(self, serializer):
        # A corrected row is a hand-written one: the job's next run for its key replaces it.
        serializer.save(computed=False)


class AgentSignalViewSet(TenantRowViewSet):
    """Signals from the tenant's trading agents; confidence between 0 and 1."""

    access_resource = "agent-signals"  # its rules: tenants/access.py
    queryset = models.AgentSignal.objects.none()
    serializer_class = serializers.AgentSignalSerializer
    filterset_class = filters.AgentSignalFilter

    @extend_schema(
        summary="Create many agent signals at once",
        description="A JSON list of 1 to AGENT_SIGNALS_BULK_MAX (default 500) signals, validated as a whole "
        "and saved in one transaction: if any item is invalid nothing is saved, and the 400 names the bad "
        "items by their index in `errors`.",
        request=serializers.AgentSignalSerializer(many=True),
        responses={
            201: serializers.AgentSignalBulkResultSerializer,
            400: OpenApiResponse(serializers.BulkErrorSerializer, description="Nothing was saved."),
        },
    )
    @action(detail=False, methods=["post"], url_path="bulk", filter_backends=[], pagination_class=None)
    def bulk(self, request):
        signals = serializers.validated_agent_signals(request.data)
        created = services.agent_signals_create_bulk(signals, request.user)
        results = self.get_serializer(created, many=True).data
        return Response({"count": len(created), "results": results}, status=status.HTTP_201_CREATED)
