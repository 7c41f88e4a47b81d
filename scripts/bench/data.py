"""`make bench-data` (`PYTHONPATH=scripts python -m bench.data`): a dedicated benchmark
database with 1M trades. Bench tooling, not part of the product: it lives under
scripts/bench/ and no production INSTALLED_APPS names it.

Builds the database from scratch every time (default `alphapulse_bench`; the
shared `alphapulse` database and any `test_*` one are refused), migrates it
to the complete state (RLS on) as the owner role, then loads with COPY:

- 100 tenants of skewed sizes: the first (`bench-000`) holds half of every
  table, the other 99 share the rest on a Zipf curve (the smallest has ~1k
  trades); users in proportion (at least 2 per tenant), all with one known
  password (`--password`, default BENCH_PASSWORD or `bench-password`);
- 1,000,000 trades, 300,000 orders, positions (one per user and symbol held),
  100,000 portfolio snapshots, 100,000 risk metrics, 200,000 agent signals,
  spread over the last year, every row valid for the CHECK constraints and
  the composite (tenant_id, user_id) keys.

COPY into a table under forced RLS is refused, even to the owner who passes
the policies ("COPY FROM not supported with row-level security"). So each
chunk is COPYed into a temporary staging table (no RLS) and moved with
`INSERT ... SELECT` as the owner, whose membership of rls_bypass_role passes
`tenant_bypass_policy`. One transaction per chunk keeps the queue of deferred
foreign-key checks short. Then VACUUM (ANALYZE), and a check that the rows
landed: counts as the owner, and as the app role under RLS for one tenant.

The same tenants, users, ids and values for a given --seed (timestamps are
relative to now). A summary goes to bench/out/dataset.json (git-ignored; --summary
elsewhere). Once every row is verified, the build's parameters are written as the
database's comment (`build_parameters`), so a caller (bench.scale) can reuse a database
built with the same parameters instead of loading it again; a build that stops half-way
leaves no such comment.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql
from tqdm import tqdm

import devdb
from tenants.catalog.servers import Server
from tenants.constants import TENANT_SETTING

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB = "alphapulse_bench"
SYMBOLS = [
    "AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "NFLX", "AMD", "INTC",
    "JPM", "BAC", "GS", "MS", "V", "MA", "KO", "PEP", "XOM", "CVX",
    "SPY", "QQQ", "IWM", "DIA", "BTC-USD", "ETH-USD", "SOL-USD", "EURUSD", "GBPUSD", "USDJPY",
]  # fmt: skip
AGENTS = ["momentum-v2", "mean-revert", "news-nlp", "pairs-stat-arb", "vol-breakout"]
METRICS = ["var_95", "var_99", "sharpe", "max_drawdown", "volatility", "beta"]
ORDER_STATUSES = ["new", "partially_filled", "filled", "cancelled", "rejected"]
CHUNK_ROWS = 100_000
YEAR_SECONDS = 365 * 24 * 3600
# The options that decide what the database holds (not --password: it is not recorded anywhere).
BUILD_OPTIONS = ("tenants", "users", "trades", "orders", "snapshots", "risk_metrics", "signals", "seed")
PARAMETERS_KEY = "bench.data"


# Tenant tables the bench leaves empty: the tenant audit log, idempotency keys, sessions and API
# keys (each measured request writes its own; none reads old ones).
NOT_LOADED = ("users", "audit_events", "idempotency_keys", "user_sessions", "api_keys")


def domain_tables() -> tuple[str, ...]:
    """The tenant tables the bench fills besides users, from the models (read once Django is set up, in main())."""
    from tenants.registry import tenant_tables  # imports the models: not before django.setup()

    return tuple(table for table in tenant_tables() if table not in NOT_LOADED)


@dataclass
class BenchTenant:
    index: int
    id: uuid.UUID
    slug: str
    share: float
    users: list[uuid.UUID] = field(default_factory=list)
    positions_per_user: list[int] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def tenant_shares(count: int, big_share: float = 0.5) -> list[float]:
    """The first tenant gets `big_share`, the rest split the remainder as 1/k (Zipf)."""
    if count == 1:
        return [1.0]
    weights = [1.0 / k for k in range(1, count)]
    total = sum(weights)
    return [big_share, *((1 - big_share) * w / total for w in weights)]


def split(total: int, shares: list[float]) -> list[int]:
    """`total` rows in proportion to `shares`, summing exactly to `total`."""
    counts = [int(total * s) for s in shares]
    counts[0] += total - sum(counts)
    return counts


class RowWriter:
    """Fast text-format COPY lines; the random source is seeded (reproducible data)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = time.time()

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def timestamp(self, max_age: float = YEAR_SECONDS) -> str:
        t = self.now - self.rng.random() * max_age
        return datetime.fromtimestamp(t, UTC).isoformat()

    def decimal(self, low: float, high: float, places: int) -> str:
        return f"{self.rng.uniform(low, high):.{places}f}"


def build_parameters(options: dict) -> dict[str, int]:
    """What the database holds, as recorded in its comment: {"bench.data": {...}}."""
    return {key: int(options[key]) for key in BUILD_OPTIONS}


def recorded_build(conn: psycopg.Connection, db_name: str) -> dict | None:
    """What a finished build recorded on `db_name` ({"bench.data": {...}, "build_seconds": s}), or None."""
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [db_name]
    ).fetchone()
    if not row or not row[0]:
        return None
    try:
        recorded = json.loads(row[0])
    except ValueError:
        return None
    return recorded if isinstance(recorded, dict) and isinstance(recorded.get(PARAMETERS_KEY), dict) else None


def scalar(conn: psycopg.Connection, query: sql.Composed | str) -> int:
    """The single value a count(*) returns."""
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


class Command(BaseCommand):
    help = (
        "Create and fill the benchmark database (1M trades, 100 skewed tenants) with COPY. "
        "Exit status: 0 built, 1 a step failed (migrate, row check), 2 refused (a database that is not its own)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--db-name", default=os.environ.get("BENCH_DB", DEFAULT_DB), help="database to (re)build")
        parser.add_argument("--tenants", type=int, default=100)
        parser.add_argument("--users", type=int, default=1000, help="users across all tenants (>= 2 per tenant)")
        parser.add_argument("--trades", type=int, default=1_000_000)
        parser.add_argument("--orders", type=int, default=300_000)
        parser.add_argument("--snapshots", type=int, default=100_000)
        parser.add_argument("--risk-metrics", type=int, default=100_000)
        parser.add_argument("--signals", type=int, default=200_000)
        parser.add_argument("--seed", type=int, default=20240601)
        parser.add_argument(
            "--password",
            default=os.environ.get("BENCH_PASSWORD", "bench-password"),
            help="password of every bench user",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument(
            "--summary", type=Path, default=ROOT / "bench" / "out" / "dataset.json", help="where the summary goes"
        )

    def handle(self, *args, db_name: str, **options):
        configured = {str(db["NAME"]) for db in settings.DATABASES.values()}
        if db_name in devdb.PROTECTED | configured or db_name.startswith("test_") or self._holds_real_tenants(db_name):
            raise CommandError(f"Refusing to rebuild '{db_name}': pick a database of your own.", returncode=2)
        started = time.monotonic()
        self.db_name = db_name
        self.options = options
        self.writer = RowWriter(options["seed"])
        self._recreate_database()
        self._migrate()
        tenants = self._plan()
        total = len(tenants) + sum(len(t.users) for t in tenants) + sum(sum(t.rows.values()) for t in tenants)
        with (
            Server.of("owner").connect(db_name) as conn,
            tqdm(total=total, unit="row", unit_scale=True, desc="bench data", disable=options["no_progress"]) as bar,
        ):
            self.bar = bar
            self._load_tenants(conn, tenants)
            self._load_users(conn, tenants)
            for table in domain_tables():
                self._load_domain(conn, table, tenants)
        self._vacuum_analyze()
        counts = self._verify(tenants)
        elapsed = time.monotonic() - started
        self._record_parameters(elapsed)
        self._write_summary(tenants, counts, elapsed)
        self.stdout.write(
            self.style.SUCCESS(
                f"{db_name}: {counts['trades']:,} trades, {counts['orders']:,} orders, {len(tenants)} tenants, "
                f"{counts['users']:,} users loaded in {elapsed:.0f}s. Log in as tenant 'bench-000' (big) or "
                f"'bench-099' (small), user 'trader-0000', password '{options['password']}'."
            )
        )

    # -- database ------------------------------------------------------------------

    def _holds_real_tenants(self, db_name: str) -> bool:
        """An existing database with any tenant that bench_data did not make is someone's data."""
        with Server.of("owner").connect("postgres", autocommit=True) as admin:
            if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone():
                return False
        with Server.of("owner").connect(db_name, autocommit=True) as conn:
            return devdb.holds_real_tenants(conn)

    def _recreate_database(self) -> None:
        with Server.of("owner").connect("postgres", autocommit=True) as admin:
            devdb.drop_database(admin, self.db_name)
            # template1 carries pg_stat_statements (scripts/db.sh).
            devdb.create_database(admin, self.db_name)
        self.stdout.write(f"created database {self.db_name}")

    def _env(self) -> dict[str, str]:
        return devdb.db_env(Server.of("default").url(self.db_name), Server.of("owner").url(self.db_name))

    def _migrate(self) -> None:
        t0 = time.monotonic()
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=self._env(),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise CommandError(f"migrate failed:\n{result.stdout}\n{result.stderr}")
        self.stdout.write(f"migrated {self.db_name} to the latest state (RLS on) in {time.monotonic() - t0:.1f}s")

    # -- what to load --------------------------------------------------------------

    def _plan(self) -> list[BenchTenant]:
        o = self.options
        shares = tenant_shares(o["tenants"])
        w = self.writer
        tenants = [
            BenchTenant(index=i, id=w.uuid(), slug=f"bench-{i:03d}", share=share) for i, share in enumerate(shares)
        ]
        user_counts = [max(2, n) for n in split(o["users"], shares)]
        totals = {
            "trades": o["trades"],
            "orders": o["orders"],
            "portfolio_snapshots": o["snapshots"],
            "risk_metrics": o["risk_metrics"],
            "agent_signals": o["signals"],
        }
        per_table = {table: split(total, shares) for table, total in totals.items()}
        for i, tenant in enumerate(tenants):
            tenant.users = [w.uuid() for _ in range(user_counts[i])]
            tenant.rows = {table: counts[i] for table, counts in per_table.items()}
            # One position per (user, symbol) held: 5 to 20 symbols per user.
            tenant.positions_per_user = [w.rng.randint(5, 20) for _ in tenant.users]
            tenant.rows["positions"] = sum(tenant.positions_per_user)
        return tenants

    # -- loading -------------------------------------------------------------------

    def _copy_direct(self, conn: psycopg.Connection, table: str, columns: list[str], lines: Iterator[str]) -> int:
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        n = 0
        with (
            conn.cursor() as cur,
            cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), cols)) as cp,
        ):
            for line in lines:
                cp.write(line)
                n += 1
        conn.commit()
        self.bar.update(n)
        return n

    def _copy_staged(self, conn: psycopg.Connection, table: str, columns: list[str], lines: Iterator[str]) -> int:
        """COPY into a staging table, then INSERT ... SELECT under RLS (the owner's bypass policy)."""
        t, stage = sql.Identifier(table), sql.Identifier(f"stage_{table}")
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS)").format(stage, t))
        conn.commit()
        total = 0
        buffer = io.StringIO()
        pending = 0

        def flush() -> None:
            nonlocal buffer, pending, total
            if not pending:
                return
            with conn.cursor() as cur:
                with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, cols)) as cp:
                    cp.write(buffer.getvalue())
                cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(t, cols, cols, stage))
                cur.execute(sql.SQL("TRUNCATE {}").format(stage))
            conn.commit()
            self.bar.update(pending)
            total += pending
            buffer, pending = io.StringIO(), 0

        for line in lines:
            buffer.write(line)
            pending += 1
            if pending >= CHUNK_ROWS:
                flush()
        flush()
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
        conn.commit()
        return total

    def _load_tenants(self, conn: psycopg.Connection, tenants: list[BenchTenant]) -> None:
        tiers = ["enterprise", "pro", "starter", "free"]

        def lines() -> Iterator[str]:
            for t in tenants:
                created = self.writer.timestamp(2 * YEAR_SECONDS)
                tier = tiers[min(3, t.index // 25)]
                yield f"{t.id}\tBench Firm {t.index:03d}\t{t.slug}\t{tier}\tactive\t{created}\t{created}\n"

        columns = ["id", "name", "slug", "subscription_tier", "status", "created_at", "updated_at"]
        self._copy_direct(conn, "tenants", columns, lines())

    def _load_users(self, conn: psycopg.Connection, tenants: list[BenchTenant]) -> None:
        # One PBKDF2 hash for everyone: hashing ~1,000 passwords would take minutes.
        password = make_password(self.options["password"])

        def lines() -> Iterator[str]:
            for t in tenants:
                for n, user_id in enumerate(t.users):
                    created = self.writer.timestamp(YEAR_SECONDS * 1.5)
                    name = f"trader-{n:04d}"
                    # The benches log in as trader-0000: an admin, the one role that may amend a trade
                    # (the update scenario's PATCH; tenants.access); the others trade.
                    role = "admin" if n == 0 else "trader"
                    yield (
                        f"{user_id}\t{t.id}\t{password}\t{name}\t{name}@{t.slug}.example\tt\tf\tf\t{role}\t{created}\n"
                    )

        columns = [
            "id", "tenant_id", "password", "username", "email", "is_active", "is_staff", "is_superuser", "role",
        ]  # fmt: skip
        self._copy_staged(conn, "users", [*columns, "created_at"], lines())

    def _load_domain(self, conn: psycopg.Connection, table: str, tenants: list[BenchTenant]) -> None:
        w = self.writer
        rng = w.rng
        make_line: Callable[[BenchTenant, uuid.UUID], str]

        if table == "trades":
            columns = ["id", "tenant_id", "user_id", "created_at", "symbol", "side", "quantity", "price", "executed_at"]

            def make_line(t, user):
                ts = w.timestamp()
                side = "buy" if rng.random() < 0.5 else "sell"
                qty, price = w.decimal(0.01, 500, 4), w.decimal(1, 900, 4)
                return f"{w.uuid()}\t{t.id}\t{user}\t{ts}\t{rng.choice(SYMBOLS)}\t{side}\t{qty}\t{price}\t{ts}\n"

        elif table == "orders":
            columns = [
                "id", "tenant_id", "user_id", "created_at", "updated_at", "symbol", "side", "order_type",
                "quantity", "limit_price", "status",
            ]  # fmt: skip

            def make_line(t, user):
                ts = w.timestamp()
                kind = "limit" if rng.random() < 0.6 else "market"
                limit = w.decimal(1, 900, 2) if kind == "limit" else "\\N"
                side = "buy" if rng.random() < 0.5 else "sell"
                return (
                    f"{w.uuid()}\t{t.id}\t{user}\t{ts}\t{ts}\t{rng.choice(SYMBOLS)}\t{side}\t{kind}\t"
                    f"{w.decimal(1, 200, 2)}\t{limit}\t{rng.choice(ORDER_STATUSES)}\n"
                )

        elif table == "portfolio_snapshots":
            columns = ["id", "tenant_id", "user_id", "created_at", "total_value", "cash", "positions_value", "taken_at"]

            def make_line(t, user):
                ts = w.timestamp()
                cash, invested = rng.uniform(1_000, 300_000), rng.uniform(100_000, 900_000)
                return f"{w.uuid()}\t{t.id}\t{user}\t{ts}\t{cash + invested:.2f}\t{cash:.2f}\t{invested:.2f}\t{ts}\n"

        elif table == "risk_metrics":
            columns = ["id", "tenant_id", "user_id", "created_at", "metric", "value", "window_days", "as_of"]

            def make_line(t, user):
                ts = w.timestamp()
                window = rng.choice((7, 30, 90, 365))
                return (
                    f"{w.uuid()}\t{t.id}\t{user}\t{ts}\t{rng.choice(METRICS)}\t{w.decimal(-1, 3, 6)}\t{window}\t{ts}\n"
                )

        elif table == "agent_signals":
            columns = [
                "id", "tenant_id", "user_id", "created_at", "agent_name", "symbol", "signal", "confidence", "rationale",
            ]  # fmt: skip

            def make_line(t, user):
                signal = rng.choice(("buy", "sell", "hold"))
                return (
                    f"{w.uuid()}\t{t.id}\t{user}\t{w.timestamp()}\t{rng.choice(AGENTS)}\t{rng.choice(SYMBOLS)}\t"
                    f"{signal}\t{rng.random():.4f}\tbench signal\n"
                )

        elif table == "positions":
            self._load_positions(conn, tenants)
            return
        else:  # pragma: no cover - domain_tables() is fixed
            raise CommandError(f"unknown table {table}")

        def lines() -> Iterator[str]:
            for t in tenants:
                users = t.users
                for _ in range(t.rows[table]):
                    yield make_line(t, users[rng.randrange(len(users))])

        self._copy_staged(conn, table, columns, lines())

    def _load_positions(self, conn: psycopg.Connection, tenants: list[BenchTenant]) -> None:
        w, rng = self.writer, self.writer.rng
        columns = ["id", "tenant_id", "user_id", "created_at", "updated_at", "symbol", "quantity", "average_price"]

        def lines() -> Iterator[str]:
            for t in tenants:
                for user, held in zip(t.users, t.positions_per_user, strict=True):
                    # Unique per (tenant, user, symbol): a sample without repeats.
                    for symbol in rng.sample(SYMBOLS, held):
                        ts = w.timestamp()
                        yield (
                            f"{w.uuid()}\t{t.id}\t{user}\t{ts}\t{ts}\t{symbol}\t{w.decimal(-50, 500, 4)}\t"
                            f"{w.decimal(1, 900, 4)}\n"
                        )

        self._copy_staged(conn, "positions", columns, lines())

    # -- after the load ------------------------------------------------------------

    def _vacuum_analyze(self) -> None:
        t0 = time.monotonic()
        with Server.of("owner").connect(self.db_name, autocommit=True) as conn:
            for table in ("tenants", "users", *domain_tables()):
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        self.stdout.write(f"VACUUM (ANALYZE) done in {time.monotonic() - t0:.1f}s")

    def _verify(self, tenants: list[BenchTenant]) -> dict[str, int]:
        """Rows landed: totals as the owner; one tenant's rows as the app role under RLS."""
        expected = {
            "tenants": len(tenants) + 1,  # and the default tenant (us001)
            "users": sum(len(t.users) for t in tenants),
            **{table: sum(t.rows[table] for t in tenants) for table in domain_tables()},
        }
        counts: dict[str, int] = {}
        with Server.of("owner").connect(self.db_name, autocommit=True) as conn:
            for table in expected:
                counts[table] = scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        wrong = {t: (counts[t], n) for t, n in expected.items() if counts[t] != n}
        if wrong:
            raise CommandError(f"rows did not land as planned (got, expected): {wrong}")
        small = tenants[-1]
        with Server.of("default").connect(self.db_name) as app:
            unscoped = scalar(app, "SELECT count(*) FROM trades")
            app.rollback()
            for tenant in (tenants[0], small):
                app.execute("SELECT set_config(%s, %s, true)", [TENANT_SETTING, str(tenant.id)])
                seen = scalar(app, "SELECT count(*) FROM trades")
                app.rollback()
                if seen != tenant.rows["trades"]:
                    raise CommandError(
                        f"app role sees {seen} trades of {tenant.slug}, expected {tenant.rows['trades']}"
                    )
        if unscoped != 0:
            raise CommandError(f"app role sees {unscoped} trades with no tenant set: RLS is not on")
        self.stdout.write(
            f"verified: owner sees every row; app role under RLS sees {tenants[0].rows['trades']:,} trades of "
            f"{tenants[0].slug} and {small.rows['trades']:,} of {small.slug}, 0 with no tenant"
        )
        return counts

    def _record_parameters(self, elapsed: float) -> None:
        """The build's parameters as the database's comment: written last, so only a complete build has one."""
        record = {PARAMETERS_KEY: build_parameters(self.options), "build_seconds": round(elapsed, 1)}
        with Server.of("owner").connect("postgres", autocommit=True) as admin:
            admin.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(self.db_name), sql.Literal(json.dumps(record, sort_keys=True))
                )
            )

    def _write_summary(self, tenants: list[BenchTenant], counts: dict[str, int], elapsed: float) -> None:
        path: Path = self.options["summary"]
        path.parent.mkdir(parents=True, exist_ok=True)
        summary = {
            "database": self.db_name,
            "seed": self.options["seed"],
            "load_seconds": round(elapsed, 1),
            "counts": counts,
            "password": self.options["password"],
            "login_username": "trader-0000",
            "tenants": [{"slug": t.slug, "id": str(t.id), "users": len(t.users), "rows": t.rows} for t in tenants],
        }
        path.write_text(json.dumps(summary, indent=1))


def main(argv: list[str] | None = None) -> None:
    """Django's command machinery (arguments, --help, CommandError's exit code), outside manage.py."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alphapulse.settings")
    sys.path.insert(0, str(ROOT))
    django.setup()
    Command().run_from_argv(["python -m bench.data", "bench_data", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
