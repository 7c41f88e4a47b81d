"""`make rehearse`: the seed's migrations on a 1M-trade legacy database, under traffic.

1. Builds a fresh database (REHEARSE_DB, default alphapulse_rehearse) at the
   legacy schema (`migrate tenants 0001_legacy_users`, `migrate trading
   0001_legacy_domain`) and loads it with COPY: 1,000,000 trades and smaller
   amounts of every other table, with no tenant_id anywhere; VACUUM (ANALYZE).
2. Starts the OLD application's traffic as the owner role, tenant-unaware:
   a writer at a fixed rate (inserts trades, orders and snapshots without
   tenant_id, updates existing trades, now and then a new user) and a reader
   (a user's latest trades, an order count).
3. Phase 1: `manage.py migrate trading 0005_us003_tenant_not_null` (us001,
   us002, us003) under that traffic.
4. "Deploy": the NEW application's writer starts (app role, one transaction
   per write that sets app.current_tenant_id and names tenant_id), as the
   runbook orders before us004. The old writer keeps going, to show what
   us004 does to code that was not redeployed.
5. Phase 2: `manage.py migrate` (us004 and the rest).
6. Reports total migrate time, each migration's duration, backfill rows/s,
   every failed write with its error and the migration running at the time,
   and the longest gap between two successful writes per writer and phase;
   then tenant_integrity and rls_check. -> docs/benchmarks/rehearsal.md

Targets: zero failed writes and longest stall < 1 s for the writers the
rollout depends on (old app through us001..us003, new app through us004).
Every loop is bounded in time; only loopback database connections.
"""

from __future__ import annotations

import argparse
import bisect
import os
import random
import re
import subprocess
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from tqdm import tqdm

from bench.common import (
    DOCS,
    OUT,
    PYTHON,
    ROOT,
    app_url,
    check_own_database,
    db_env,
    machine,
    manage,
    owner_url,
    recreate_database,
    say,
)

DEFAULT_TENANT_ID = "00000000-0000-0000-0000-000000000001"
SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "SPY", "QQQ", "BTC-USD", "ETH-USD", "EURUSD"]
PHASE1_TARGET = ("trading", "0005_us003_tenant_not_null")
YEAR = 365 * 24 * 3600
LEGACY_COLUMNS = {
    "trades": ["id", "user_id", "created_at", "symbol", "side", "quantity", "price", "executed_at"],
    "orders": [
        "id", "user_id", "created_at", "updated_at", "symbol", "side", "order_type", "quantity", "limit_price",
        "status",
    ],
    "positions": ["id", "user_id", "created_at", "updated_at", "symbol", "quantity", "average_price"],
    "portfolio_snapshots": ["id", "user_id", "created_at", "total_value", "cash", "positions_value", "taken_at"],
    "risk_metrics": ["id", "user_id", "created_at", "metric", "value", "window_days", "as_of"],
    "agent_signals": ["id", "user_id", "created_at", "agent_name", "symbol", "signal", "confidence", "rationale"],
}  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get("REHEARSE_DB", "alphapulse_rehearse"))
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--others", type=int, default=20_000, help="snapshots, risk metrics, signals each")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--write-rate", type=float, default=100.0, help="old app writes per second")
    parser.add_argument("--new-write-rate", type=float, default=50.0, help="new app writes per second")
    parser.add_argument("--read-rate", type=float, default=20.0, help="old app reads per second")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of traffic before and after migrating")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DOCS / "rehearsal.md")
    return parser.parse_args()


# -- the legacy database ---------------------------------------------------------------


def ts(rng: random.Random, now: float) -> str:
    return datetime.fromtimestamp(now - rng.random() * YEAR, UTC).isoformat()


def load_legacy(db: str, args) -> dict[str, object]:
    """COPY the old application's data (no tenant_id), one transaction per 100k rows."""
    rng = random.Random(args.seed)
    now = time.time()
    users = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(args.users)]
    trade_sample: list[str] = []

    def trades():
        for i in range(args.trades):
            t = ts(rng, now)
            trade_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            if i % 1000 == 0:
                trade_sample.append(str(trade_id))
            side = "buy" if rng.random() < 0.5 else "sell"
            yield (
                f"{trade_id}\t{rng.choice(users)}\t{t}\t{rng.choice(SYMBOLS)}\t{side}\t"
                f"{rng.uniform(0.01, 500):.4f}\t{rng.uniform(1, 900):.4f}\t{t}\n"
            )

    def orders():
        for _ in range(args.orders):
            t, kind = ts(rng, now), rng.choice(("market", "limit"))
            limit = f"{rng.uniform(1, 900):.2f}" if kind == "limit" else "\\N"
            yield (
                f"{uuid.uuid4()}\t{rng.choice(users)}\t{t}\t{t}\t{rng.choice(SYMBOLS)}\t{rng.choice(('buy', 'sell'))}\t"
                f"{kind}\t{rng.uniform(1, 200):.2f}\t{limit}\t{rng.choice(('new', 'filled', 'cancelled'))}\n"
            )

    def positions():
        for user in users:
            for symbol in rng.sample(SYMBOLS, 8):
                t = ts(rng, now)
                qty, price = rng.uniform(-50, 500), rng.uniform(1, 900)
                yield f"{uuid.uuid4()}\t{user}\t{t}\t{t}\t{symbol}\t{qty:.4f}\t{price:.4f}\n"

    def snapshots():
        for _ in range(args.others):
            t = ts(rng, now)
            cash, invested = rng.uniform(1e3, 3e5), rng.uniform(1e5, 9e5)
            yield f"{uuid.uuid4()}\t{rng.choice(users)}\t{t}\t{cash + invested:.2f}\t{cash:.2f}\t{invested:.2f}\t{t}\n"

    def risks():
        for _ in range(args.others):
            t = ts(rng, now)
            yield f"{uuid.uuid4()}\t{rng.choice(users)}\t{t}\tsharpe\t{rng.uniform(-1, 3):.6f}\t30\t{t}\n"

    def signals():
        for _ in range(args.others):
            t = ts(rng, now)
            yield (
                f"{uuid.uuid4()}\t{rng.choice(users)}\t{t}\tmomentum\t{rng.choice(SYMBOLS)}\t"
                f"{rng.choice(('buy', 'sell', 'hold'))}\t{rng.random():.4f}\t\n"
            )

    tables = [
        ("trades", LEGACY_COLUMNS["trades"], trades, args.trades),
        ("orders", LEGACY_COLUMNS["orders"], orders, args.orders),
        ("positions", LEGACY_COLUMNS["positions"], positions, args.users * 8),
        ("portfolio_snapshots", LEGACY_COLUMNS["portfolio_snapshots"], snapshots, args.others),
        ("risk_metrics", LEGACY_COLUMNS["risk_metrics"], risks, args.others),
        ("agent_signals", LEGACY_COLUMNS["agent_signals"], signals, args.others),
    ]
    total = args.users + sum(t[3] for t in tables)
    t0 = time.monotonic()
    with (
        psycopg.connect(owner_url(db)) as conn,
        tqdm(total=total, unit="row", unit_scale=True, desc="legacy data") as bar,
    ):
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY users (id, password, username, email, is_active, is_staff, is_superuser, created_at) FROM STDIN"
            ) as cp,
        ):
            for n, user in enumerate(users):
                cp.write(f"{user}\t\tlegacy{n:04d}\tlegacy{n:04d}@example.com\tt\tf\tf\t{ts(rng, now)}\n")
        conn.commit()
        bar.update(len(users))
        for table, columns, lines, _ in tables:
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            chunk: list[str] = []
            for line in lines():
                chunk.append(line)
                if len(chunk) == 100_000:
                    with conn.cursor() as cur, cur.copy(statement) as cp:
                        cp.write("".join(chunk))
                    conn.commit()
                    bar.update(len(chunk))
                    chunk = []
            if chunk:
                with conn.cursor() as cur, cur.copy(statement) as cp:
                    cp.write("".join(chunk))
                conn.commit()
                bar.update(len(chunk))
    load_s = time.monotonic() - t0
    with psycopg.connect(owner_url(db), autocommit=True) as conn:
        for table in ("users", "trades", "orders", "positions", "portfolio_snapshots", "risk_metrics", "agent_signals"):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        counts = {
            t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
            for t in ("users", "trades", "orders", "positions", "portfolio_snapshots", "risk_metrics", "agent_signals")
        }
    return {"users": [str(u) for u in users], "trade_sample": trade_sample, "counts": counts, "load_s": load_s}


# -- traffic -------------------------------------------------------------------------------


@dataclass
class Op:
    t: float  # seconds since the rehearsal's clock started
    ms: float
    op: str
    ok: bool
    error: str = ""


class Client(threading.Thread):
    """A paced loop of operations on its own connection, until `stop_event` (or max_seconds)."""

    def __init__(
        self,
        name: str,
        url: str,
        rate: float,
        *,
        clock0: float,
        stop_event: threading.Event,
        users: list[str],
        trade_ids: list[str],
        seed: int,
        max_seconds: float = 1800.0,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.url, self.rate, self.clock0, self.stop_event = url, rate, clock0, stop_event
        self.users, self.trade_ids, self.max_seconds = users, trade_ids, max_seconds
        self.seed = seed
        self.rng = random.Random(seed)
        self.events: list[Op] = []
        self.crash: str | None = None

    def connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
        conn.execute("SET statement_timeout = '30s'")
        return conn

    def operation(self, conn: psycopg.Connection, i: int) -> None:
        """One operation; sets self.op to its name before running it."""
        raise NotImplementedError

    def run(self) -> None:
        try:
            self._loop()
        except Exception:  # a bug in the rehearsal itself, not a failed write: reported as such
            self.crash = traceback.format_exc()

    def _loop(self) -> None:
        conn = self.connect()
        started = time.monotonic()
        i = 0
        while not self.stop_event.is_set() and time.monotonic() - started < self.max_seconds:
            due = started + i / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t0 = time.monotonic()
            self.op = "?"
            try:
                self.operation(conn, i)
                self.events.append(Op(time.monotonic() - self.clock0, (time.monotonic() - t0) * 1000, self.op, True))
            except psycopg.Error as exc:
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                self.events.append(
                    Op(time.monotonic() - self.clock0, (time.monotonic() - t0) * 1000, self.op, False, message)
                )
                if conn.closed or conn.broken:
                    conn = self.connect()
            i += 1
        conn.close()


class OldWriter(Client):
    """The pre-tenancy application: knows nothing of tenants; the owner role."""

    def operation(self, conn: psycopg.Connection, i: int) -> None:
        rng = self.rng
        user = rng.choice(self.users)
        k = i % 10
        if i % 250 == 249:
            self.op = "insert user"
            name = f"newcomer-{self.seed}-{i}"
            conn.execute(
                "INSERT INTO users (id, password, username, email, is_active, is_staff, is_superuser, created_at) "
                "VALUES (gen_random_uuid(), '', %s, '', true, false, false, now())",
                [name],
            )
            return
        if k < 6:
            self.op = "insert trade"
            conn.execute(
                "INSERT INTO trades (id, user_id, symbol, side, quantity, price, executed_at, created_at) "
                "VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, now(), now())",
                [user, rng.choice(SYMBOLS), rng.choice(("buy", "sell")), 1 + i % 50, 10 + i % 700],
            )
            return
        if k < 8:
            self.op = "update trade"
            conn.execute(
                "UPDATE trades SET price = price + 0.01 WHERE id = %s", [self.trade_ids[i % len(self.trade_ids)]]
            )
            return
        if k == 8:
            self.op = "insert order"
            conn.execute(
                "INSERT INTO orders (id, user_id, symbol, side, order_type, quantity, limit_price, status, "
                "created_at, updated_at) VALUES (gen_random_uuid(), %s, %s, 'buy', 'market', 5, NULL, 'new', "
                "now(), now())",
                [user, rng.choice(SYMBOLS)],
            )
            return
        self.op = "insert snapshot"
        conn.execute(
            "INSERT INTO portfolio_snapshots (id, user_id, total_value, cash, positions_value, taken_at, created_at) "
            "VALUES (gen_random_uuid(), %s, 1000, 400, 600, now(), now())",
            [user],
        )


class OldReader(Client):
    def operation(self, conn: psycopg.Connection, i: int) -> None:
        user = self.rng.choice(self.users)
        if i % 2:
            self.op = "read trades"
            conn.execute(
                "SELECT id, symbol, price FROM trades WHERE user_id = %s ORDER BY created_at DESC LIMIT 50", [user]
            ).fetchall()
            return
        self.op = "count orders"
        conn.execute("SELECT count(*) FROM orders WHERE user_id = %s", [user]).fetchone()


class NewWriter(Client):
    """The tenant-aware application, deployed before us004: the app role, one transaction
    per write, app.current_tenant_id set transaction-locally, tenant_id named."""

    def connect(self) -> psycopg.Connection:
        # The app role's own settings apply: statement_timeout 15 s, lock_timeout 5 s.
        return psycopg.connect(self.url, autocommit=True, connect_timeout=5)

    def operation(self, conn: psycopg.Connection, i: int) -> None:
        user = self.rng.choice(self.users)
        with conn.transaction():  # BEGIN ... COMMIT, or ROLLBACK on an error
            conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [DEFAULT_TENANT_ID])
            if i % 4 == 3:
                self.op = "update trade"
                conn.execute(
                    "UPDATE trades SET price = price + 0.01 WHERE id = %s",
                    [self.trade_ids[(i * 7) % len(self.trade_ids)]],
                )
                return
            self.op = "insert trade"
            conn.execute(
                "INSERT INTO trades (id, tenant_id, user_id, symbol, side, quantity, price, executed_at, "
                "created_at) VALUES (gen_random_uuid(), %s, %s, 'MSFT', 'sell', 3, 321.5, now(), now())",
                [DEFAULT_TENANT_ID, user],
            )


# -- migrate, watched -------------------------------------------------------------------------


APPLYING = re.compile(r"Applying (?P<name>\S+?)\.\.\.(?P<body>.*?)(?P<status> OK|FAILED|$)", re.S)
BACKFILL_DONE = re.compile(r"backfill (?P<table>\w+): done, (?P<rows>\d+) rows in (?P<s>[\d.]+)s")


def migrate_watched(db: str, clock0: float, *target: str) -> dict[str, object]:
    """Run manage.py migrate, noting when each piece of its output arrived."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [PYTHON, "manage.py", "migrate", *target, "--no-input"],
        cwd=ROOT,
        env=db_env(db, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    offsets: list[int] = []
    times: list[float] = []
    text = ""
    fd = proc.stdout.fileno()
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        offsets.append(len(text))
        times.append(time.monotonic() - clock0)
        text += chunk.decode(errors="replace")
    code = proc.wait()
    end = time.monotonic() - clock0

    def at(offset: int) -> float:
        return times[max(0, bisect.bisect_right(offsets, offset) - 1)] if times else end

    migrations = []
    for m in APPLYING.finditer(text):
        migrations.append(
            {
                "name": m.group("name"),
                "start": at(m.start()),
                "end": at(m.end()) if m.group("status").strip() else end,
                "ok": m.group("status").strip() == "OK",
            }
        )
    backfills = [
        {"table": b.group("table"), "rows": int(b.group("rows")), "s": float(b.group("s"))}
        for b in BACKFILL_DONE.finditer(text)
    ]
    return {
        "target": " ".join(target) or "(latest)",
        "code": code,
        "seconds": time.monotonic() - t0,
        "start": t0 - clock0,
        "end": end,
        "migrations": migrations,
        "backfills": backfills,
        "output": text,
    }


def running_at(t: float, phases: list[dict]) -> str:
    """The migration running at t: the last one started by then, or 'after X' once it is done."""
    started = [m for phase in phases for m in phase["migrations"] if m["start"] <= t]
    if not started:
        return "(before migrating)"
    last = max(started, key=lambda m: m["start"])
    return last["name"] if t <= last["end"] + 0.05 else f"(after {last['name']})"


def longest_gap(events: list[Op], start: float, end: float) -> tuple[float, float]:
    """Longest time without a successful write in [start, end]; (gap seconds, when it ended)."""
    times = [start, *sorted(e.t for e in events if e.ok and start <= e.t <= end), end]
    best, when = 0.0, start
    for a, b in zip(times, times[1:], strict=False):
        if b - a > best:
            best, when = b - a, b
    return best, when


# -- the report --------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    check_own_database(args.db)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    say(f"rehearsal on {args.db}: fresh database at the legacy schema")
    recreate_database(args.db)
    manage(args.db, "migrate", "tenants", "0001_legacy_users", "--no-input", "-v", "0")
    manage(args.db, "migrate", "trading", "0001_legacy_domain", "--no-input", "-v", "0")
    for app in ("contenttypes", "auth", "admin", "sessions"):  # the old application had these too
        manage(args.db, "migrate", app, "--no-input", "-v", "0")
    legacy = load_legacy(args.db, args)
    say(f"legacy data: {legacy['counts']} in {legacy['load_s']:.0f}s")

    clock0 = time.monotonic()
    stop_old, stop_new = threading.Event(), threading.Event()
    common = {"clock0": clock0, "users": legacy["users"], "trade_ids": legacy["trade_sample"]}
    old_writer = OldWriter("old-writer", owner_url(args.db), args.write_rate, stop_event=stop_old, seed=1, **common)
    old_reader = OldReader("old-reader", owner_url(args.db), args.read_rate, stop_event=stop_old, seed=2, **common)
    new_writer = NewWriter("new-writer", app_url(args.db), args.new_write_rate, stop_event=stop_new, seed=3, **common)
    phases: list[dict] = []
    try:
        old_writer.start()
        old_reader.start()
        time.sleep(args.settle)
        say("phase 1: migrate trading 0005_us003_tenant_not_null (us001..us003) under the old app's traffic")
        phases.append(migrate_watched(args.db, clock0, *PHASE1_TARGET))
        say(f"phase 1: exit {phases[-1]['code']} in {phases[-1]['seconds']:.1f}s")
        if phases[-1]["code"] == 0:
            say("deploy: the new app's writer starts (the old one keeps going)")
            new_writer.start()
            deploy_t = time.monotonic() - clock0
            time.sleep(args.settle)
            say("phase 2: migrate (us004) under both")
            phases.append(migrate_watched(args.db, clock0))
            say(f"phase 2: exit {phases[-1]['code']} in {phases[-1]['seconds']:.1f}s")
        else:
            deploy_t = time.monotonic() - clock0
        time.sleep(args.settle)
    finally:
        stop_old.set()
        stop_new.set()
        for thread in (old_writer, old_reader, new_writer):
            if thread.is_alive() or thread.ident:
                thread.join(timeout=60)
    end_t = time.monotonic() - clock0
    crashed = [f"{c.name}:\n{c.crash}" for c in (old_writer, old_reader, new_writer) if c.crash]
    if crashed:
        raise SystemExit("a traffic thread crashed (a bug in the rehearsal):\n" + "\n".join(crashed))
    integrity = manage(args.db, "tenant_integrity", check=False)
    rls = manage(args.db, "rls_check", check=False)
    with psycopg.connect(owner_url(args.db)) as conn:
        final_counts = {
            t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
            for t in ("users", "trades", "orders", "portfolio_snapshots")
        }
    write_report(
        args,
        legacy,
        phases,
        {"old writer": old_writer, "old reader": old_reader, "new writer": new_writer},
        deploy_t,
        end_t,
        integrity,
        rls,
        final_counts,
        time.monotonic() - started,
    )
    say(f"done in {(time.monotonic() - started) / 60:.1f} min: {args.out}")


def write_report(args, legacy, phases, clients, deploy_t, end_t, integrity, rls, final_counts, elapsed) -> None:
    m = machine()
    migrate_s = sum(p["seconds"] for p in phases)
    backfills = [b for p in phases for b in p["backfills"]]
    backfill_rows = sum(b["rows"] for b in backfills)
    backfill_s = sum(b["s"] for b in backfills)
    phase1 = phases[0]
    phase2 = phases[1] if len(phases) > 1 else None
    windows = {
        "old writer": [("us001..us003 (phase 1)", phase1["start"], phase1["end"], True)],
        "new writer": [],
        "old reader": [("us001..us003 (phase 1)", phase1["start"], phase1["end"], True)],
    }
    if phase2:
        windows["old writer"].append(("us004 (phase 2; not redeployed)", phase2["start"], phase2["end"], False))
        windows["old reader"].append(("us004 (phase 2)", phase2["start"], phase2["end"], False))
        windows["new writer"].append(("us004 (phase 2)", phase2["start"], phase2["end"], True))

    lines = [
        "# Migration rehearsal under traffic (`make rehearse`)",
        "",
        f"Generated by `make rehearse` (`scripts/bench/rehearse.py`) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {elapsed / 60:.1f} min in all. Machine: "
        f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, shared with another developer's tests.",
        "",
        "## What ran",
        "",
        f"- Fresh database `{args.db}` at the legacy schema (`migrate tenants 0001_legacy_users`, `migrate trading "
        "0001_legacy_domain`), loaded with COPY: "
        + ", ".join(f"{v:,} {k}" for k, v in legacy["counts"].items())
        + f" (no tenant_id), in {legacy['load_s']:.0f} s, then VACUUM (ANALYZE).",
        f"- Old application (owner role, tenant-unaware, autocommit): a writer at {args.write_rate:g} writes/s "
        "(60 % INSERT trades, 20 % UPDATE trades, 10 % INSERT orders, 10 % INSERT portfolio_snapshots, every "
        f"250th a new user; never a tenant_id) and a reader at {args.read_rate:g} reads/s.",
        f"- Phase 1: `manage.py migrate {' '.join(PHASE1_TARGET)}` (us001, us002, us003) under that traffic.",
        f"- Deploy: the new application's writer starts ({args.new_write_rate:g} writes/s, app role, one "
        "transaction per write with `set_config('app.current_tenant_id', ..., true)` and tenant_id named; "
        "75 % INSERT trades, 25 % UPDATE trades). The old writer is **not** stopped, to show what us004 does to "
        "code that was not redeployed.",
        "- Phase 2: `manage.py migrate` (us004 and the state-only migrations).",
        f"- Batches of {os.environ.get('TENANT_BACKFILL_BATCH_SIZE', '5000')} rows "
        f"(TENANT_BACKFILL_BATCH_SIZE), DDL under lock_timeout {os.environ.get('MIGRATION_LOCK_TIMEOUT_MS', '200')} "
        "ms with retries (MIGRATION_LOCK_TIMEOUT_MS).",
        "",
        "## Results",
        "",
        "| figure | value |",
        "|---|---|",
        f"| total migrate time | {migrate_s:.1f} s (phase 1 {phase1['seconds']:.1f} s"
        + (f", phase 2 {phase2['seconds']:.1f} s" if phase2 else "")
        + ") |",
        f"| migrate exit codes | {', '.join(str(p['code']) for p in phases)} |",
        f"| backfill | {backfill_rows:,} rows in {backfill_s:.1f} s: **{backfill_rows / backfill_s:,.0f} rows/s** |"
        if backfill_s
        else "| backfill | none reported |",
    ]
    for b in backfills:
        rate = f"{b['rows'] / b['s']:,.0f} rows/s" if b["s"] >= 0.1 else "under 0.1 s"
        lines.append(f"| backfill {b['table']} | {b['rows']:,} rows in {b['s']:.1f} s ({rate}) |")

    lines += [
        "",
        "## Writes, failures and stalls",
        "",
        "| client | window | operations | failed | longest gap between successes | when (migration running) | "
        "slowest operation | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for label, client in clients.items():
        for title, start, end, counts_for_target in windows[label]:
            events = [e for e in client.events if start <= e.t <= end]
            if not events:
                continue
            failed = [e for e in events if not e.ok]
            gap, when = longest_gap(events, start, end)
            slow = max(events, key=lambda e: e.ms)
            target = "-"
            if counts_for_target and label != "old reader":
                ok = not failed and gap < 1.0
                verdicts.append((label, title, ok, len(failed), gap))
                target = "PASS" if ok else "**MISS**"
            lines.append(
                f"| {label} | {title} | {len(events):,} | {len(failed):,} | {gap * 1000:.0f} ms | "
                f"{running_at(when, phases)} | {slow.ms:.0f} ms ({slow.op}) | {target} |"
            )
    lines += [
        "",
        "Targets: zero failed writes and longest stall < 1 s for the old app through us001..us003 and the new app "
        "through us004 (the runbook's order: deploy the tenant-setting code before us004).",
    ]
    lines += ["", "| verdict | |", "|---|---|"]
    for label, title, ok, nfailed, gap in verdicts:
        lines.append(
            f"| {label}, {title} | {'PASS' if ok else '**MISS**'}: {nfailed} failed, longest gap {gap * 1000:.0f} ms |"
        )

    lines += ["", "## Every failed operation", ""]
    all_failed = sorted((e.t, label, e) for label, c in clients.items() for e in c.events if not e.ok)
    if all_failed:
        t, label, e = all_failed[0]
        lines += [
            f"First failure: {label}, {e.op} at {t:.2f} s, while {running_at(t, phases)} was running: `{e.error}`.",
            "",
        ]
    any_failed = False
    for label, client in clients.items():
        failed = [e for e in client.events if not e.ok]
        if not failed:
            continue
        any_failed = True
        groups: Counter[tuple[str, str, str]] = Counter()
        first: dict[tuple[str, str, str], float] = {}
        for e in failed:
            key = (e.op, e.error, running_at(e.t, phases))
            groups[key] += 1
            first.setdefault(key, e.t)
        lines += [f"{label}:", "", "| operation | error | migration running | count | first at (s) |"]
        lines.append("|---|---|---|---|---|")
        for (op, error, migration), n in sorted(groups.items(), key=lambda kv: first[kv[0]]):
            lines.append(f"| {op} | `{error}` | {migration} | {n} | {first[(op, error, migration)]:.1f} |")
        lines.append("")
    if not any_failed:
        lines.append("None.")
    lines += [
        "",
        "## Migrations (time on the rehearsal clock; traffic started at 0 s)",
        "",
        f"Deploy of the new writer at {deploy_t:.1f} s; traffic stopped at {end_t:.1f} s.",
        "",
        "| migration | start (s) | duration (s) | status |",
        "|---|---|---|---|",
    ]
    for p in phases:
        for mig in p["migrations"]:
            lines.append(
                f"| {mig['name']} | {mig['start']:.1f} | {mig['end'] - mig['start']:.1f} | "
                f"{'OK' if mig['ok'] else 'FAILED'} |"
            )
    lines += [
        "",
        "## After",
        "",
        f"Rows: {', '.join(f'{v:,} {k}' for k, v in final_counts.items())}.",
        "",
        f"`manage.py tenant_integrity` exit {integrity.returncode}; `manage.py rls_check` exit {rls.returncode}:",
        "",
        "```",
        (integrity.stdout + integrity.stderr).strip()[-1500:],
        (rls.stdout + rls.stderr).strip()[-1500:],
        "```",
        "",
        "## migrate output",
        "",
    ]
    for p in phases:
        lines += [f"`migrate {p['target']}`:", "", "```", p["output"].strip()[-6000:], "```", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
