"""The servers, databases and requests `make bench` (bench.threeway) measures with.

- set_state: the bench database in the ON state (every migration, RLS forced) or the OFF state
  (every migration, then what us004 does undone on every tenant table: its policies dropped,
  RLS neither forced nor enabled; rolling back to 0007 itself would also drop the later
  columns the app reads, users.role among them);
- create_twin / drop_database: copies of the bench database (CREATE DATABASE ... TEMPLATE), one
  per variant, so the variants are served at once;
- Server: gunicorn on loopback against one copy, with the variant's settings;
- tenant_ids, sample_trade_ids, login, build_calls: the requests of each scenario, half of them
  for the big tenant (BIG), the rest for three small ones (SMALL).

Against the bench database of `make bench-data` only (never `alphapulse` nor a `test_*` one).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql

import devdb
from bench import loadgen
from bench.common import (
    ROOT,
    check_own_database,
    db_env,
    manage,
    owner_url,
)

BIG, SMALL = "bench-000", ("bench-099", "bench-075", "bench-050")
FILTER_SYMBOLS = ("AAPL", "MSFT", "NVDA", "SPY", "BTC-USD")
# A symbol no bench tenant holds: the filtered list then reads every row its index offers for the tenant.
ABSENT_SYMBOL = "ZZ-NONE"
# Trades made by the create scenario carry this symbol (none in bench-data), so they are told apart
# from the dataset's; they land only in the per-run copies of the database, dropped afterwards.
CREATED_SYMBOL = "ZZ-BENCH"
HOST = "127.0.0.1"


# -- the two states ------------------------------------------------------------------


# database state -> (the state it migrates to, RLS_ENABLED of the app serving it)
VARIANTS = {"on": ("on", True), "off": ("off", False)}


def set_state(db: str, variant: str) -> float:
    """Migrate to the variant's database state (no-op migrate when already there)."""
    state = VARIANTS[variant][0]
    t0 = time.monotonic()
    manage(db, "migrate", "--no-input", "-v", "0")
    if state == "off":
        switch_rls_off(db)
    with psycopg.connect(owner_url(db)) as conn:
        rls, forced = conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'trades'::regclass"
        ).fetchone()
    if (rls and forced) != (state == "on"):
        raise SystemExit(f"trades has RLS={rls} FORCE={forced} after switching to {variant}")
    return time.monotonic() - t0


def switch_rls_off(db: str) -> None:
    """us004 undone on every table that has a tenant policy (EnableTenantRLS's reverse), as the owner."""
    with psycopg.connect(owner_url(db), autocommit=True) as conn:
        policies = conn.execute(
            "SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'public' AND tablename IN "
            "(SELECT tablename FROM pg_policies WHERE policyname = 'tenant_isolation_policy')"
        ).fetchall()
        for table, policy in policies:
            conn.execute(sql.SQL("DROP POLICY {} ON {}").format(sql.Identifier(policy), sql.Identifier(table)))
        for table in sorted({table for table, _ in policies}):
            conn.execute(sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(sql.Identifier(table)))
            conn.execute(sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))


def free_port() -> int:
    """A free port on loopback: from BENCH_PORTS ("8130-8139") when set, else any."""
    first, _, last = os.environ.get("BENCH_PORTS", "0-0").partition("-")
    port = devdb.free_port(HOST, range(int(first), int(last or first) + 1))
    if port is None:
        raise SystemExit(f"no free port in BENCH_PORTS={os.environ['BENCH_PORTS']}")
    return port


class Server:
    """gunicorn on loopback against the bench database; stopped by its own pid only."""

    def __init__(
        self,
        db: str,
        variant: str,
        workers: int,
        log: Path,
        settings_module: str = "alphapulse.settings",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        env = db_env(
            db,
            DJANGO_SETTINGS_MODULE=settings_module,
            PYTHONPATH=str(ROOT / "scripts"),  # the floor's settings live in scripts/bench/floor
            RLS_ENABLED="true" if VARIANTS[variant][1] else "false",
            JWT_ACCESS_MINUTES="120",  # one login serves every round
            # The per-tenant throttle still runs (its cache counter is part of every request),
            # with limits no bench run reaches: a 429 would measure the limiter, not RLS.
            TENANT_RATE_LIMITS=",".join(f"{tier}=100000000/min" for tier in ("free", "starter", "pro", "enterprise")),
            DEBUG="false",
        )
        env.update(extra_env or {})
        self.log = log.open("a")
        self.proc = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "gunicorn"),
                "alphapulse.wsgi",
                "--bind",
                f"{HOST}:{self.port}",
                "--workers",
                str(workers),
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=self.log,
        )
        self.health = self._wait()

    def _wait(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.proc.returncode}; see {self.log.name}")
            try:
                status, body = loadgen.request(HOST, self.port, loadgen.Call("GET", "/health"), timeout=2)
                if status == 200:
                    return json.loads(body)
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit("gunicorn did not answer /health in 30 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# -- what the load is made of ----------------------------------------------------------


def tenant_ids(db: str, slugs: tuple[str, ...] = (BIG, *SMALL)) -> dict[str, str]:
    with psycopg.connect(owner_url(db)) as conn:
        rows = conn.execute("SELECT slug, id::text FROM tenants WHERE slug = ANY(%s)", [list(slugs)]).fetchall()
    found = dict(rows)
    missing = set(slugs) - set(found)
    if missing:
        raise SystemExit(f"bench tenants {sorted(missing)} are missing: run 'make bench-data' first")
    return found


def sample_trade_ids(db: str, ids: dict[str, str], n: int = 400) -> dict[str, list[str]]:
    """Existing trade ids per tenant, read by the owner (rls_bypass_role)."""
    out = {}
    with psycopg.connect(owner_url(db)) as conn:
        conn.execute("SELECT setseed(0.42)")
        for slug, tenant_id in ids.items():
            rows = conn.execute(
                "SELECT id::text FROM trades WHERE tenant_id = %s ORDER BY random() LIMIT %s", [tenant_id, n]
            ).fetchall()
            out[slug] = [r[0] for r in rows]
    return out


def login(port: int, slug: str, password: str) -> str:
    body = loadgen.json_body({"tenant": slug, "username": "trader-0000", "password": password})
    status, payload = loadgen.request(HOST, port, loadgen.Call("POST", "/api/auth/token/", body=body))
    if status != 200:
        raise SystemExit(f"login to {slug} failed ({status}): {payload[:200]!r}")
    return json.loads(payload)["access"]


def build_calls(
    scenario: str,
    n: int,
    tokens: dict[str, str],
    trade_ids: dict[str, list[str]],
    big: str = BIG,
    small: tuple[str, ...] = SMALL,
) -> list[loadgen.Call]:
    # Half of the requests for the big tenant, the rest spread over the small ones.
    rotation = list(itertools.chain.from_iterable((big, s) for s in small))
    calls = []
    for i in range(n):
        slug = rotation[i % len(rotation)]
        label = "big" if slug == big else "small"
        token = tokens[slug]
        if scenario == "list":
            call = loadgen.Call("GET", "/api/trades/?page_size=50", token, tenant=label)
        elif scenario == "filtered":
            symbol = FILTER_SYMBOLS[(i // len(rotation)) % len(FILTER_SYMBOLS)]
            side = "buy" if (i // 2) % 2 == 0 else "sell"
            call = loadgen.Call("GET", f"/api/trades/?symbol={symbol}&side={side}", token, tenant=label)
        elif scenario == "absent":
            call = loadgen.Call("GET", f"/api/trades/?symbol={ABSENT_SYMBOL}", token, tenant=label)
        elif scenario == "detail":
            ids = trade_ids[slug]
            call = loadgen.Call("GET", f"/api/trades/{ids[(i // len(rotation)) % len(ids)]}/", token, tenant=label)
        else:
            body = loadgen.json_body(
                {
                    "symbol": CREATED_SYMBOL,
                    "side": "buy" if i % 2 else "sell",
                    "quantity": f"{1 + i % 97}.25",
                    "price": f"{100 + i % 211}.5",
                }
            )
            call = loadgen.Call("POST", "/api/trades/", token, body=body, tenant=label)
        calls.append(call)
    return calls


def update_call(call: loadgen.Call, i: int) -> loadgen.Call:
    """The detail call turned into a PATCH of the same trade (quantity only: the data stays comparable)."""
    body = loadgen.json_body({"quantity": f"{1 + i % 89}.5"})
    return dataclasses.replace(call, method="PATCH", body=body)


def calls_for(
    scenario: str,
    n: int,
    tokens: dict[str, str],
    trade_ids: dict[str, list[str]],
    big: str = BIG,
    small: tuple[str, ...] = SMALL,
) -> list[loadgen.Call]:
    """build_calls, and "update": the detail calls as PATCHes."""
    if scenario == "update":
        return [update_call(c, i) for i, c in enumerate(build_calls("detail", n, tokens, trade_ids, big, small))]
    return build_calls(scenario, n, tokens, trade_ids, big, small)


# -- one round ---------------------------------------------------------------------------


def create_twin(db: str, twin: str) -> None:
    """`twin` as a copy of `db` (CREATE DATABASE ... TEMPLATE needs no other session on `db`)."""
    check_own_database(twin)
    with psycopg.connect(owner_url("postgres"), autocommit=True) as admin:
        devdb.drop_database(admin, twin)
        for attempt in range(20):
            try:
                devdb.create_database(admin, twin, template=db)
                return
            except psycopg.errors.ObjectInUse:  # an autovacuum worker on the template: wait for it
                time.sleep(0.5 * (attempt + 1))
    raise SystemExit(f"could not copy {db}: it stays in use")
