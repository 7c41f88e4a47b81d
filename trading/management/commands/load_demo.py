"""Demo data for `make setup`: three firms with traders and a few thousand rows
each, plus the platform tenant and its staff user for /admin/. Idempotent: a
tenant that already has trades is left alone."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import environ
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from tenants.bulk import bulk_insert
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tenants.routers import STAFF_DATABASE
from trading.models import AgentSignal, Order, PortfolioSnapshot, Position, RiskMetric, Trade

OWNER = STAFF_DATABASE  # platform work: the owner connection
DEMO_TENANTS = [
    ("acme", "Acme Capital", "pro", ["alice", "arthur"]),
    ("globex", "Globex Trading", "starter", ["bob", "bianca"]),
    ("initech", "Initech Quant", "enterprise", ["carol", "chen"]),
]
SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "BTC-USD", "ETH-USD", "SPY", "QQQ", "EURUSD"]


def money(rng: random.Random, low: float, high: float, places: int = 2) -> Decimal:
    return Decimal(str(round(rng.uniform(low, high), places)))


class Command(BaseCommand):
    help = "Load demo tenants, users and trading data (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--trades", type=int, default=2000, help="trades per tenant")
        parser.add_argument(
            "--password", default=None, help="demo users' password (default: DEMO_PASSWORD or 'alphapulse-demo')"
        )

    def handle(self, *args, trades: int, password: str | None, **options):
        env = environ.Env()
        password = password or env.str("DEMO_PASSWORD", default="alphapulse-demo")
        self._platform_staff(env)
        for slug, name, tier, usernames in DEMO_TENANTS:
            tenant, _ = Tenant.objects.using(OWNER).get_or_create(
                slug=slug, defaults={"name": name, "subscription_tier": tier}
            )
            with tenant_context(tenant, using=OWNER):
                users = [self._user(tenant, username, password) for username in usernames]
                if Trade.objects.using(OWNER).exists():
                    self.stdout.write(f"{slug}: demo data already there")
                    continue
                self._trading_rows(tenant, users, trades)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo tenants: {', '.join(t[0] for t in DEMO_TENANTS)}; users "
                f"{', '.join(u for t in DEMO_TENANTS for u in t[3])}; password '{password}'."
            )
        )

    def _user(self, tenant: Tenant, username: str, password: str, **extra) -> User:
        user = User.objects.using(OWNER).filter(username=username).first()
        if user is None:
            user = User(tenant=tenant, username=username, email=f"{username}@{tenant.slug}.example", **extra)
            user.set_password(password)
            user.save(using=OWNER)
        return user

    def _platform_staff(self, env: environ.Env) -> None:
        username = env.str("ADMIN_USERNAME", default="admin")
        admin_password = env.str("ADMIN_PASSWORD", default="")
        platform, _ = Tenant.objects.using(OWNER).get_or_create(
            slug=settings.PLATFORM_TENANT_SLUG,
            defaults={"name": "AlphaPulse Platform", "subscription_tier": Tenant.Tier.ENTERPRISE},
        )
        if not admin_password:
            self.stdout.write("ADMIN_PASSWORD is not set: no staff user created.")
            return
        with tenant_context(platform, using=OWNER):
            if User.objects.using(OWNER).filter(username=username).exists():
                return
            self._user(platform, username, admin_password, is_staff=True, is_superuser=True)
        self.stdout.write(
            self.style.WARNING(f"Staff user '{username}' created for /admin/; password: {admin_password} (from .env)")
        )

    @transaction.atomic(using=OWNER)
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
        bulk_insert(Trade.objects.using(OWNER), trades, batch_size=1000)
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
        bulk_insert(Order.objects.using(OWNER), orders, batch_size=1000)
        bulk_insert(
            Position.objects.using(OWNER),
            [
                Position(
                    tenant=tenant,
                    user=user,
                    symbol=symbol,
                    quantity=money(rng, -50, 500, 2),
                    average_price=money(rng, 5, 900, 2),
                )
                for user in users
                for symbol in SYMBOLS
            ],
        )
        bulk_insert(
            PortfolioSnapshot.objects.using(OWNER),
            [
                row(
                    PortfolioSnapshot,
                    total_value=Decimal("1000000") + money(rng, -50000, 50000),
                    cash=money(rng, 1000, 300000),
                    positions_value=money(rng, 500000, 900000),
                )
                for _ in range(trade_count // 20)
            ],
        )
        bulk_insert(
            RiskMetric.objects.using(OWNER),
            [
                row(RiskMetric, metric=rng.choice(RiskMetric.Metric.values), value=money(rng, -1, 3, 4))
                for _ in range(trade_count // 20)
            ],
        )
        bulk_insert(
            AgentSignal.objects.using(OWNER),
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
        self.stdout.write(f"{tenant.slug}: {trade_count} trades and related rows loaded")
