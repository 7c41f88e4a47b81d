"""Legacy: the six domain tables of single-tenant AlphaPulse (no tenant_id).

Each row points at its user with a plain key; US-003 turns that into the
composite (tenant_id, user_id) key.
"""

import uuid

import django.contrib.auth.validators
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = [("tenants", "0001_legacy_users")]

    operations = [
        migrations.CreateModel(
            name="AgentSignal",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("agent_name", models.CharField(max_length=64)),
                ("symbol", models.CharField(max_length=16)),
                (
                    "signal",
                    models.CharField(
                        choices=[("buy", "Buy"), ("sell", "Sell"), ("hold", "Hold")],
                        max_length=4,
                    ),
                ),
                ("confidence", models.DecimalField(decimal_places=4, max_digits=5)),
                (
                    "rationale",
                    models.TextField(blank=True, default="", max_length=2000),
                ),
                (
                    "user",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "agent_signals",
                "ordering": ["-created_at"],
                "abstract": False,
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("signal__in", ["buy", "sell", "hold"])),
                        name="agent_signals_signal_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("confidence__gte", 0), ("confidence__lte", 1)),
                        name="agent_signals_confidence_between_0_and_1",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="Order",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("symbol", models.CharField(max_length=16)),
                (
                    "side",
                    models.CharField(choices=[("buy", "Buy"), ("sell", "Sell")], max_length=4),
                ),
                (
                    "order_type",
                    models.CharField(choices=[("market", "Market"), ("limit", "Limit")], max_length=6),
                ),
                ("quantity", models.DecimalField(decimal_places=8, max_digits=20)),
                (
                    "limit_price",
                    models.DecimalField(blank=True, decimal_places=8, max_digits=20, null=True),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("new", "New"),
                            ("partially_filled", "Partially filled"),
                            ("filled", "Filled"),
                            ("cancelled", "Cancelled"),
                            ("rejected", "Rejected"),
                        ],
                        default="new",
                        max_length=16,
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "user",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "orders",
                "ordering": ["-created_at"],
                "abstract": False,
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("side__in", ["buy", "sell"])),
                        name="orders_side_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("order_type__in", ["market", "limit"])),
                        name="orders_type_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            (
                                "status__in",
                                [
                                    "new",
                                    "partially_filled",
                                    "filled",
                                    "cancelled",
                                    "rejected",
                                ],
                            )
                        ),
                        name="orders_status_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("quantity__gt", 0)),
                        name="orders_quantity_positive",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("limit_price__gt", 0), ("order_type", "limit")),
                            models.Q(("limit_price__isnull", True), ("order_type", "market")),
                            _connector="OR",
                        ),
                        name="orders_limit_price_matches_type",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="PortfolioSnapshot",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("total_value", models.DecimalField(decimal_places=2, max_digits=24)),
                ("cash", models.DecimalField(decimal_places=2, max_digits=24)),
                (
                    "positions_value",
                    models.DecimalField(decimal_places=2, max_digits=24),
                ),
                ("taken_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "user",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "portfolio_snapshots",
                "ordering": ["-created_at"],
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="Position",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("symbol", models.CharField(max_length=16)),
                ("quantity", models.DecimalField(decimal_places=8, max_digits=20)),
                ("average_price", models.DecimalField(decimal_places=8, max_digits=20)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "user",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "positions",
                "ordering": ["-created_at"],
                "abstract": False,
                "constraints": [
                    models.UniqueConstraint(fields=("user", "symbol"), name="positions_user_symbol_uniq"),
                    models.CheckConstraint(
                        condition=models.Q(("average_price__gte", 0)),
                        name="positions_average_price_not_negative",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="RiskMetric",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "metric",
                    models.CharField(
                        choices=[
                            ("var_95", "Value at risk (95%)"),
                            ("var_99", "Value at risk (99%)"),
                            ("sharpe", "Sharpe ratio"),
                            ("max_drawdown", "Maximum drawdown"),
                            ("volatility", "Volatility"),
                            ("beta", "Beta"),
                        ],
                        max_length=16,
                    ),
                ),
                ("value", models.DecimalField(decimal_places=8, max_digits=20)),
                ("window_days", models.PositiveSmallIntegerField(default=30)),
                ("as_of", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "user",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "risk_metrics",
                "ordering": ["-created_at"],
                "abstract": False,
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            (
                                "metric__in",
                                [
                                    "var_95",
                                    "var_99",
                                    "sharpe",
                                    "max_drawdown",
                                    "volatility",
                                    "beta",
                                ],
                            )
                        ),
                        name="risk_metrics_metric_valid",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Trade",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("symbol", models.CharField(max_length=16)),
                (
                    "side",
                    models.CharField(choices=[("buy", "Buy"), ("sell", "Sell")], max_length=4),
                ),
                ("quantity", models.DecimalField(decimal_places=8, max_digits=20)),
                ("price", models.DecimalField(decimal_places=8, max_digits=20)),
                (
                    "executed_at",
                    models.DateTimeField(default=django.utils.timezone.now),
                ),
                (
                    "user",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "trades",
                "ordering": ["-created_at"],
                "abstract": False,
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("side__in", ["buy", "sell"])),
                        name="trades_side_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("quantity__gt", 0)),
                        name="trades_quantity_positive",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("price__gt", 0)),
                        name="trades_price_positive",
                    ),
                ],
            },
        ),
    ]
