"""Demo data for `make setup`: three firms with traders and a few thousand rows
each, plus the platform tenant and its staff user for /admin/. Idempotent: a
tenant that already has trades is left alone."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import timedelta
from decimal import Decimal

import environ
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from tenants import services
from tenants.constants import OWNER_DATABASE
from tenants.context import tenant_context
from tenants.database.bulk import bulk_insert
from tenants.http.idempotency import principal_of
from tenants.management.base import OperatorCommand, refused
from tenants.models import IdempotencyKey, Tenant, User
from tenants.roles import Role
from trading import ledger
from trading.models import AgentSignal, Order, PortfolioSnapshot, Position, RiskMetric, Trade

# Each demo tenant: an admin, a trader and a viewer (README, "Try it").
DEMO_TENANTS = [
    ("acme", "Acme Capital", "pro", [("alice", Role.ADMIN), ("arthur", Role.TRADER), ("ava", Role.VIEWER)]),
    ("globex", "Globex Trading", "starter", [("bob", Role.ADMIN), ("bianca", Role.TRADER), ("boris", Role.VIEWER)]),
    ("initech", "Initech Quant", "enterprise", [("carol", Role.ADMIN), ("chen", Role.TRADER), ("cora", Role.VIEWER)]),
]
SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "BTC-USD", "ETH-USD", "SPY", "QQQ", "EURUSD"]


def money(rng: random.Random, low: float, high: float, places: int = 2) -> Decimal:
    return Decimal(str(round(rng.uniform(low, high), places)))


class Command(OperatorCommand):
    help = "Load demo tenants, users and trading data (idempotent). Exit status: 0 loaded, 2 refused by a tenant rule."

    def add_arguments(self, parser):
        parser.add_argument("--trades", type=int, default=2000, help="trades per tenant")
        parser.add_argument(
            "--password", default=None, help="demo users' password (default: DEMO_PASSWORD or 'alphapulse-demo')"
        )

    def handle(self, *args, trades: int, password: str | None, **options):
        env = environ.Env()
        password = password or env.str("DEMO_PASSWORD", default="alphapulse-demo")
        try:
            self._platform_staff(env)
            for slug, name, tier, usernames in DEMO_TENANTS:
                tenant = services.tenant_get_or_create(slug=slug, name=name, tier=tier)
                with tenant_context(tenant, using=OWNER_DATABASE):
                    users = [self._user(tenant, username, password, role=role) for username, role in usernames]
                    if Trade.objects.using(OWNER_DATABASE).exists():
                        self.stdout.write(f"{slug}: demo data already there")
                        continue
                    self._trading_rows(tenant, users, trades)
        except ValidationError as exc:  # e.g. an ADMIN_USERNAME that is not a valid username
            raise refused("Refused", exc) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo tenants: {', '.join(t[0] for t in DEMO_TENANTS)}; users "
                f"{', '.join(f'{u} ({r})' for t in DEMO_TENANTS for u, r in t[3])}; password '{password}'."
            )
        )

    def _user(
        self, tenant: Tenant, username: str, password: str, *, role: str = Role.ADMIN, staff: bool = False
    ) -> User:
        existing = services.users_named(username, tenant_slug=tenant.slug)
        if existing:
            return existing[0]
        # Demo passwords are the operator's choice (DEMO_PASSWORD): not validated.
        return services.user_create(
            tenant=tenant,
            username=username,
            password=password,
            email=f"{username}@{tenant.slug}.example",
            role=role,
            is_staff=staff,
            is_superuser=staff,
            check_password=False,
        )

    def _platform_staff(self, env: environ.Env) -> None:
        username = env.str("ADMIN_USERNAME", default="admin")
        admin_password = env.str("ADMIN_PASSWORD", default="")
        platform = services.platform_tenant()
        if not admin_password:
            self.stdout.write("ADMIN_PASSWORD is not set: no staff user created.")
            return
        if services.users_named(username, tenant_slug=platform.slug):
            return
        self._user(platform, username, admin_password, staff=True)
        self.stdout.write(
            self.style.WARNING(f"Staff user '{username}' created for /admin/; password: {admin_password} (from .env)")
        )

    @transaction.atomic(using=OWNER_DATABASE)
    def _trading_rows(self, tenant: Tenant, users: list[User], trade_count: int) -> None:
        rng = random.Random(tenant.slug)
        now = timezone.now()

        def row(model, **fields):
            user = rng.choice(users)
            created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 90))
            return model(tenant=tenant, user=user, created_at=created, **fields)

        trades = [
            row(
                Trade,
                symbol=rng.choice(SYMBOLS),
                side=rng.choice(["buy", "sell"]),
                quantity=money(rng, 1, 500, 4),
                price=money(rng, 5, 900, 4),
            )
            for _ in tqdm(range(trade_count), desc=f"{tenant.slug} trades", leave=False, disable=None)
        ]
        for trade in trades:
            # Executed a little before it was recorded, as a broker's fill report arrives:
            # spread over the 90 days like created_at, so the executed_at filters have something to find.
            trade.executed_at = trade.created_at - timedelta(seconds=rng.randint(0, 600))
        bulk_insert(Trade.objects.using(OWNER_DATABASE), trades, batch_size=1000)
        orders = []
        for _ in range(trade_count // 5):
            kind = rng.choice(["market", "limit"])
            orders.append(
                row(
                    Order,
                    symbol=rng.choice(SYMBOLS),
                    side=rng.choice(["buy", "sell"]),
                    order_type=kind,
                    quantity=money(rng, 1, 200, 2),
                    limit_price=money(rng, 5, 900, 2) if kind == "limit" else None,
                    status=rng.choice(["new", "filled", "cancelled", "partially_filled"]),
                )
            )
            # Filled by hand before fills existed: as much as its status says.
            order = orders[-1]
            if order.status == "filled":
                order.filled_quantity = order.quantity
            elif order.status == "partially_filled":
                order.filled_quantity = (order.quantity / 2).quantize(Decimal("0.01"))
        bulk_insert(Order.objects.using(OWNER_DATABASE), orders, batch_size=1000)
        # Positions follow trades: each is what its user's trades in the symbol sum to (trading.ledger).
        by_key: dict[tuple, list] = {}
        for trade in sorted(trades, key=lambda t: (t.created_at, str(t.pk))):
            by_key.setdefault((trade.user, trade.symbol), []).append((trade.side, trade.quantity, trade.price))
        positions = []
        for (user, symbol), booked in by_key.items():
            quantity, average = ledger.fold(booked)
            positions.append(
                Position(tenant=tenant, user=user, symbol=symbol, quantity=quantity, average_price=average)
            )
        bulk_insert(Position.objects.using(OWNER_DATABASE), positions)
        bulk_insert(
            PortfolioSnapshot.objects.using(OWNER_DATABASE), self._daily_snapshots(rng, tenant, users, now, days=60)
        )
        risk = {}  # by the job's natural key (tenant, user, metric, window_days, as_of)
        for _ in range(trade_count // 20):
            metric = row(RiskMetric, metric=rng.choice(RiskMetric.Metric.values), value=money(rng, -1, 3, 4))
            metric.as_of, metric.computed = metric.created_at, True
            risk[(metric.user_id, metric.metric, metric.as_of)] = metric
        bulk_insert(RiskMetric.objects.using(OWNER_DATABASE), list(risk.values()))
        bulk_insert(
            AgentSignal.objects.using(OWNER_DATABASE),
            [
                row(
                    AgentSignal,
                    agent_name=rng.choice(["momentum-v2", "mean-revert", "news-nlp"]),
                    symbol=rng.choice(SYMBOLS),
                    signal=rng.choice(["buy", "sell", "hold"]),
                    confidence=money(rng, 0, 1, 4),
                )
                for _ in range(trade_count // 10)
            ],
        )
        # The first demo order as its admin placed it with an Idempotency-Key: a retry of that
        # POST within 24 hours answers this again (tenants.http.idempotency; the purge job ages it out).
        first = orders[0]
        body = {"id": str(first.pk), "symbol": first.symbol, "status": first.status}
        placed = json.dumps({"method": "POST", "path": "/api/orders/", "body": body}, sort_keys=True)
        IdempotencyKey.objects.using(OWNER_DATABASE).create(
            tenant=tenant,
            principal=principal_of(users[0].pk),
            key=f"load-demo-{tenant.slug}",
            fingerprint=hashlib.sha256(placed.encode()).hexdigest(),
            status_code=201,
            body=body,
        )
        self.stdout.write(f"{tenant.slug}: {trade_count} trades and related rows loaded")

    @staticmethod
    def _daily_snapshots(rng: random.Random, tenant: Tenant, users: list[User], now, days: int) -> list:
        """One end-of-day snapshot per user for `days` days: a random walk the risk_metrics job can read."""
        snapshots = []
        for user in users:
            cash = money(rng, 1000, 300000)
            positions = money(rng, 500000, 900000)
            for day in range(days, 0, -1):
                positions = (positions * Decimal(str(1 + rng.gauss(0.0005, 0.015)))).quantize(Decimal("0.01"))
                taken_at = (now - timedelta(days=day)).replace(hour=21, minute=0, second=0, microsecond=0)
                snapshots.append(
                    PortfolioSnapshot(
                        tenant=tenant,
                        user=user,
                        cash=cash,
                        positions_value=positions,
                        total_value=cash + positions,
                        taken_at=taken_at,
                        created_at=taken_at,
                        computed=True,  # history as the job would have written it
                    )
                )
        return snapshots
