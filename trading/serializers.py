"""Serializers for the six domain resources.

`id`, `tenant_id`, `user` and `created_at` are read-only: the tenant comes
from the request's context and the owner from the authenticated user, so a
`tenant_id` or `user` in a body is ignored and can never place or move a row.
Field-level rules live here; rules across fields call trading.services.
"""

from __future__ import annotations

from decimal import Decimal

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
        fields = ("id", "tenant_id", "user", "symbol", "side", "quantity", "price", "executed_at", "created_at")


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
            "created_at",
            "updated_at",
        )
        read_only_fields = (*TenantRowSerializer.Meta.read_only_fields, "updated_at")

    def validate(self, attrs: dict) -> dict:
        order_type = attrs.get("order_type", getattr(self.instance, "order_type", None))
        limit_price = attrs["limit_price"] if "limit_price" in attrs else getattr(self.instance, "limit_price", None)
        if order_type == models.OrderType.LIMIT and limit_price is None:
            raise serializers.ValidationError({"limit_price": ["A limit order needs a limit_price."]})
        if order_type == models.OrderType.MARKET and limit_price is not None:
            raise serializers.ValidationError({"limit_price": ["A market order has no limit_price: send null."]})
        if self.instance is None:
            if attrs.get("status", models.OrderStatus.NEW) != models.OrderStatus.NEW:
                raise serializers.ValidationError({"status": ["A new order starts as 'new'."]})
        else:
            if "status" in attrs:
                services.order_check_transition(self.instance, attrs["status"])
            # Once an order is working (or done) only its status moves: its
            # terms are what the market saw.
            if self.instance.status != models.OrderStatus.NEW and set(attrs) - {"status"}:
                raise serializers.ValidationError(
                    {"non_field_errors": [f"An order that is {self.instance.status} can only change its status."]}
                )
        return attrs


class PositionSerializer(TenantRowSerializer):
    quantity = serializers.DecimalField(max_digits=20, decimal_places=8)
    average_price = serializers.DecimalField(max_digits=20, decimal_places=8, min_value=Decimal("0"))

    class Meta(TenantRowSerializer.Meta):
        model = models.Position
        fields = ("id", "tenant_id", "user", "symbol", "quantity", "average_price", "created_at", "updated_at")
        read_only_fields = (*TenantRowSerializer.Meta.read_only_fields, "updated_at")

    def validate(self, attrs: dict) -> dict:
        # One position per (tenant, user, symbol): the tenant and user are not
        # fields, so DRF's UniqueTogetherValidator cannot see this one.
        symbol = attrs.get("symbol", getattr(self.instance, "symbol", None))
        # By user_id: `self.instance.user` would load the user by id alone, a
        # query without tenant_id (on Citus: sent to every shard).
        user_id = self.context["request"].user.pk if self.instance is None else self.instance.user_id
        clash = models.Position.objects.filter(user_id=user_id, symbol=symbol)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError({"symbol": [f"A position in {symbol} already exists for this user."]})
        return attrs


class PortfolioSnapshotSerializer(TenantRowSerializer):
    class Meta(TenantRowSerializer.Meta):
        model = models.PortfolioSnapshot
        fields = ("id", "tenant_id", "user", "total_value", "cash", "positions_value", "taken_at", "created_at")


class RiskMetricSerializer(TenantRowSerializer):
    window_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)

    class Meta(TenantRowSerializer.Meta):
        model = models.RiskMetric
        fields = ("id", "tenant_id", "user", "metric", "value", "window_days", "as_of", "created_at")


class AgentSignalSerializer(TenantRowSerializer):
    confidence = serializers.DecimalField(
        max_digits=5, decimal_places=4, min_value=Decimal("0"), max_value=Decimal("1")
    )
    rationale = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    class Meta(TenantRowSerializer.Meta):
        model = models.AgentSignal
        fields = ("id", "tenant_id", "user", "agent_name", "symbol", "signal", "confidence", "rationale", "created_at")
