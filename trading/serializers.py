"""Serializers for the six domain resources.

`id`, `tenant_id`, `user` and `created_at` are read-only: the tenant comes
from the request's context and the owner from the authenticated user, so a
`tenant_id` or `user` in a body is ignored and can never place or move a row.
Field formats (symbols, positive quantities) live here; every rule that
reads more than one field or another row (an order's terms, its status
moves, one position per symbol) is trading.services', called from validate().
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import RegexValidator
from rest_framework import serializers

from trading import models, services

SYMBOL = RegexValidator(r"^[A-Z0-9][A-Z0-9.\-/]{0,15}$", "Symbols are 1-16 characters: A-Z, 0-9, '.', '-', '/'.")
POSITIVE = Decimal("0.00000001")


def positive_quantity(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=20, decimal_places=8, min_value=POSITIVE, **kwargs)


class TenantRowSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)
    user = serializers.UUIDField(source="user_id", read_only=True)

    class Meta:
        read_only_fields: tuple[str, ...] = ("id", "tenant_id", "user", "created_at")

    def validate_symbol(self, value: str) -> str:
        value = value.strip().upper()
        SYMBOL(value)
        return value


class TradeSerializer(TenantRowSerializer):
    quantity = positive_quantity()
    price = positive_quantity()

    class Meta(TenantRowSerializer.Meta):
        model = models.Trade
        fields = (
            "id",
            "tenant_id",
            "user",
            "symbol",
            "side",
            "quantity",
            "price",
            "executed_at",
            "order",
            "created_at",
        )
        read_only_fields = (*TenantRowSerializer.Meta.read_only_fields, "order")

    order = serializers.UUIDField(source="order_id", read_only=True, allow_null=True)


class OrderSerializer(TenantRowSerializer):
    quantity = positive_quantity()
    limit_price = positive_quantity(required=False, allow_null=True)

    class Meta(TenantRowSerializer.Meta):
        model = models.Order
        fields = (
            "id",
            "tenant_id",
            "user",
            "symbol",
            "side",
            "order_type",
            "quantity",
            "limit_price",
            "status",
            "filled_quantity",
            "created_at",
            "updated_at",
        )
        read_only_fields = (*TenantRowSerializer.Meta.read_only_fields, "filled_quantity", "updated_at")

    def validate(self, attrs: dict) -> dict:
        services.order_check_terms(
            attrs.get("order_type", getattr(self.instance, "order_type", None)),
            attrs["limit_price"] if "limit_price" in attrs else getattr(self.instance, "limit_price", None),
        )
        if self.instance is None:
            services.order_check_new(attrs.get("status", models.OrderStatus.NEW))
        else:
            services.order_check_change(self.instance, attrs)
        return attrs


class PositionSerializer(TenantRowSerializer):
    quantity = serializers.DecimalField(max_digits=20, decimal_places=8)
    average_price = serializers.DecimalField(max_digits=20, decimal_places=8, min_value=Decimal("0"))

    class Meta(TenantRowSerializer.Meta):
        model = models.Position
        fields = ("id", "tenant_id", "user", "symbol", "quantity", "average_price", "created_at", "updated_at")
        read_only_fields = (*TenantRowSerializer.Meta.read_only_fields, "updated_at")

    def validate(self, attrs: dict) -> dict:
        # The user by id: `self.instance.user` would load the user by id alone,
        # a query without tenant_id (on Citus: sent to every shard).
        services.position_check_unique(
            self.context["request"].user.pk if self.instance is None else self.instance.user_id,
            attrs.get("symbol", getattr(self.instance, "symbol", None)),
            instance=self.instance,
        )
        return attrs


class FillSerializer(serializers.Serializer):
    """The body of POST /api/orders/<id>/fills/: how much was executed, at what price, when."""

    quantity = positive_quantity()
    price = positive_quantity()
    executed_at = serializers.DateTimeField(required=False)


class FillResultSerializer(serializers.Serializer):
    trade = TradeSerializer()
    order = OrderSerializer()
    position = PositionSerializer()


class PortfolioSnapshotSerializer(TenantRowSerializer):
    class Meta(TenantRowSerializer.Meta):
        model = models.PortfolioSnapshot
        fields = (
            "id",
            "tenant_id",
            "user",
            "total_value",
            "cash",
            "positions_value",
            "taken_at",
            "computed",
            "created_at",
        )
        read_only_fields = (*TenantRowSerializer.Meta.read_only_fields, "computed")


class RiskMetricSerializer(TenantRowSerializer):
    window_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)

    class Meta(TenantRowSerializer.Meta):
        model = models.RiskMetric
        fields = ("id", "tenant_id", "user", "metric", "value", "window_days", "as_of", "computed", "created_at")
        read_only_fields = (*TenantRowSerializer.Meta.read_only_fields, "computed")


class AgentSignalSerializer(TenantRowSerializer):
    confidence = serializers.DecimalField(
        max_digits=5, decimal_places=4, min_value=Decimal("0"), max_value=Decimal("1")
    )
    rationale = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    class Meta(TenantRowSerializer.Meta):
        model = models.AgentSignal
        fields = ("id", "tenant_id", "user", "agent_name", "symbol", "signal", "confidence", "rationale", "created_at")


def validated_agent_signals(items: object) -> list[dict]:
    """The request body of POST /api/agent-signals/bulk/, validated as a whole: a JSON list of
    1..AGENT_SIGNALS_BULK_MAX signals; any invalid item fails the whole request with a 400
    that names the bad items by their index in the list."""
    limit = settings.AGENT_SIGNALS_BULK_MAX
    if not isinstance(items, list):
        raise serializers.ValidationError({"detail": "Send a JSON list of agent signals."})
    if not 1 <= len(items) <= limit:
        raise serializers.ValidationError(
            {"detail": f"Send between 1 and {limit} agent signals per request, not {len(items)}."}
        )
    checked = [AgentSignalSerializer(data=item) for item in items]
    errors = {str(i): s.errors for i, s in enumerate(checked) if not s.is_valid()}
    if errors:
        raise serializers.ValidationError(
            {
                "detail": f"{len(errors)} of {len(items)} agent signals are invalid "
                f"({'item' if len(errors) == 1 else 'items'} {', '.join(errors)}); none was saved.",
                "errors": errors,
            }
        )
    return [s.validated_data for s in checked]


class AgentSignalBulkResultSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = AgentSignalSerializer(many=True)


class BulkErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.DictField(), required=False, help_text="Field errors of each bad item, by its index."
    )
