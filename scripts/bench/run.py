"""Sequential ON/OFF rounds (`python -m bench.run`; `make bench` runs bench.threeway).

Against the bench database of `make bench-data` (BENCH_DB, default
alphapulse_bench; never `alphapulse` nor a `test_*` database):

- ON:  every migration applied (RLS enabled and forced), RLS_ENABLED=true;
- OFF: the same code with us004 rolled back (`migrate tenants
  0007_us002_users_tenant_not_null`: no policies, RLS disabled), and
  RLS_ENABLED=false (the app sets no tenant; the tenant-scoped ORM filters);

Rounds alternate ON, OFF, ON, OFF... (--rounds of each, at least 3, more while
within --budget-minutes). Each round migrates
to its state, starts gunicorn on loopback (--workers sync workers), warms up,
then sends a fixed number of requests per scenario with a bounded thread pool:
list (a page of 50 trades), filtered list (symbol + side), detail, create.
Tokens of the big tenant and three small ones alternate (half the requests go
to the big tenant). Figures per scenario: p50/p95/p99, throughput; the ON/OFF
ratio is the median over adjacent ON/OFF rounds. pg_stat_statements (query_stats
snapshot/compare) gives the slowest query the app role ran.

Then an interleaved check (--no-interleaved skips it): three copies of the
database (CREATE DATABASE ... TEMPLATE, dropped afterwards), three servers at
once (ON; OFF; SET = the OFF state with RLS_ENABLED=true, i.e. the app's
set_config round trip without policies) and every request alternating between
them, so all three see the same moment of a shared machine's load. ON/SET is
what the policies cost, SET/OFF what the app's round trip costs.

Writes bench/out/results.json, docs/benchmarks/README.md, latency.png and
plans.md (bench.plans), and leaves the database at the ON state.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import loadgen, report
from bench.common import (
    DOCS,
    OUT,
    PYTHON,
    ROOT,
    app_url,
    check_own_database,
    database_exists,
    db_env,
    manage,
    owner_url,
    say,
)

SCENARIOS = ("list", "filtered", "detail", "create")
OFF_TARGET = ("tenants", "0007_us002_users_tenant_not_null")  # the state just before us004
BIG, SMALL = "bench-000", ("bench-099", "bench-075", "bench-050")
FILTER_SYMBOLS = ("AAPL", "MSFT", "NVDA", "SPY", "BTC-USD")
# Trades made by the create scenario carry this symbol (none in bench-data) and are deleted after
# every round: otherwise they pile up at the head of every tenant's newest-first index and make
# later rounds (and later runs) read through them.
CREATED_SYMBOL = "ZZ-BENCH"
HOST = "127.0.0.1"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get("BENCH_DB", "alphapulse_bench"))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "5")), help="rounds of each")
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_REQUESTS", "1500")))
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=float(os.environ.get("BENCH_BUDGET_MINUTES", "13")),
        help="start no new ON/OFF pair that would end past this (3 pairs always run)",
    )
    parser.add_argument("--warmup", type=int, default=100, help="requests per scenario before measuring")
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", "2")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "2")))
    parser.add_argument("--no-interleaved", action="store_true", help="skip the interleaved twin-database check")
    parser.add_argument("--interleaved-requests", type=int, default=1000, help="per variant and scenario")
    parser.add_argument("--password", default=None, help="bench users' password (default: from bench-data)")
    # `make bench` is bench.threeway now; these sequential rounds report apart.
    parser.add_argument("--docs", type=Path, default=DOCS / "rounds")
    return parser.parse_args()


# -- the two states ------------------------------------------------------------------


# variant -> (database state, RLS_ENABLED of the app)
VARIANTS = {"on": ("on", True), "off": ("off", False), "set": ("off", True)}


def set_state(db: str, variant: str) -> float:
    """Migrate to the variant's database state (no-op migrate when already there)."""
    state = VARIANTS[variant][0]
    t0 = time.monotonic()
    if state == "on":
        manage(db, "migrate", "--no-input", "-v", "0")
    else:
        manage(db, "migrate", *OFF_TARGET, "--no-input", "-v", "0")
    with psycopg.connect(owner_url(db)) as conn:
        rls, forced = conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'trades'::regclass"
        ).fetchone()
    if (rls and forced) != (state == "on"):
        raise SystemExit(f"trades has RLS={rls} FORCE={forced} after switching to {variant}")
    return time.monotonic() - t0


def free_port() -> int:
    """A free port on loopback: from BENCH_PORTS ("8130-8139") when set, else any."""
    first, _, last = os.environ.get("BENCH_PORTS", "0-0").partition("-")
    for port in range(int(first), int(last or first) + 1):
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise SystemExit(f"no free port in BENCH_PORTS={os.environ['BENCH_PORTS']}")


class Server:
    """gunicorn on loopback against the bench database; stopped by its own pid only."""

    def __init__(
        self, db: str, variant: str, workers: int, log: Path, settings_module: str = "alphapulse.settings"
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


def tenant_ids(db: str) -> dict[str, str]:
    with psycopg.connect(owner_url(db)) as conn:
        rows = conn.execute("SELECT slug, id::text FROM tenants WHERE slug = ANY(%s)", [[BIG, *SMALL]]).fetchall()
    found = dict(rows)
    missing = {BIG, *SMALL} - set(found)
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


def build_calls(scenario: str, n: int, tokens: dict[str, str], trade_ids: dict[str, list[str]]) -> list[loadgen.Call]:
    # Half of the requests for the big tenant, the rest spread over the small ones.
    rotation = list(itertools.chain.from_iterable((BIG, small) for small in SMALL))
    calls = []
    for i in range(n):
        slug = rotation[i % len(rotation)]
        label = "big" if slug == BIG else "small"
        token = tokens[slug]
        if scenario == "list":
            call = loadgen.Call("GET", "/api/trades/?page_size=50", token, tenant=label)
        elif scenario == "filtered":
            symbol = FILTER_SYMBOLS[(i // len(rotation)) % len(FILTER_SYMBOLS)]
            side = "buy" if (i // 2) % 2 == 0 else "sell"
            call = loadgen.Call("GET", f"/api/trades/?symbol={symbol}&side={side}", token, tenant=label)
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


# -- one round ---------------------------------------------------------------------------


def run_round(args, number: int, variant: str, tokens: dict[str, str], trade_ids, password: str) -> dict[str, Any]:
    switch_s = set_state(args.db, variant)
    server = Server(args.db, variant, args.workers, OUT / "gunicorn.log")
    try:
        if not tokens:
            tokens.update({slug: login(server.port, slug, password) for slug in (BIG, *SMALL)})
        for scenario in SCENARIOS:
            loadgen.run(HOST, server.port, build_calls(scenario, args.warmup, tokens, trade_ids), args.concurrency)
        scenarios = {}
        for scenario in SCENARIOS:
            calls = build_calls(scenario, args.requests, tokens, trade_ids)
            results, wall = loadgen.run(HOST, server.port, calls, args.concurrency)
            expected = 201 if scenario == "create" else 200
            errors = [r for r in results if r.status != expected]
            scenarios[scenario] = {
                "wall_s": wall,
                "throughput": len(results) / wall,
                "ms": [round(r.ms, 3) for r in results],
                "tenant": [r.tenant for r in results],
                "errors": len(errors),
                "error_samples": [asdict(r) for r in errors[:5]],
            }
    finally:
        server.stop()
        delete_created(args.db)
    summary = report.round_summary(scenarios)
    say(
        f"round {number} {variant.upper():3} (switch {switch_s:.1f}s, health rls={server.health.get('rls')}): "
        + "  ".join(f"{s} p99 {summary[s]['p99']:.1f}ms {summary[s]['throughput']:.0f}/s" for s in SCENARIOS)
    )
    return {
        "round": number,
        "variant": variant,
        "switch_s": switch_s,
        "health": server.health,
        "scenarios": scenarios,
    }


def create_twin(db: str, twin: str) -> None:
    """`twin` as a copy of `db` (CREATE DATABASE ... TEMPLATE needs no other session on `db`)."""
    check_own_database(twin)
    with psycopg.connect(owner_url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(twin)))
        for attempt in range(20):
            try:
                admin.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(twin), sql.Identifier(db))
                )
                return
            except psycopg.errors.ObjectInUse:  # an autovacuum worker on the template: wait for it
                time.sleep(0.5 * (attempt + 1))
    raise SystemExit(f"could not copy {db}: it stays in use")


def drop_database(name: str) -> None:
    check_own_database(name)
    with psycopg.connect(owner_url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def app_statement_stats(db: str) -> dict[str, tuple[int, float]]:
    """The app role's own pg_stat_statements rows in `db`: query -> (calls, total exec ms)."""
    with psycopg.connect(app_url(db)) as conn:
        rows = conn.execute(
            "SELECT query, calls, total_exec_time FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND userid = "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user) AND queryid IS NOT NULL"
        ).fetchall()
    return {query: (calls, total) for query, calls, total in rows}


def interleaved_check(args, tokens: dict[str, str], trade_ids) -> dict[str, Any]:
    """ON, OFF and SET servers at once; every request alternates between them (see the module doc).

    Each variant runs on a copy of the bench database of its own (CREATE DATABASE ... TEMPLATE),
    so all three start from the same pages and cache history, each gets a third of the traffic,
    and shared_buffers favours none.
    """
    t0 = time.monotonic()
    databases = {v: f"{args.db}_{v}" for v in ("on", "off", "set")}
    say(f"interleaved check: copying {args.db} to {', '.join(databases.values())}")
    servers: dict[str, Server] = {}
    out: dict[str, Any] = {"requests": args.interleaved_requests, "scenarios": {}}
    try:
        for variant, twin in databases.items():
            create_twin(args.db, twin)
            set_state(twin, variant)
        servers = {v: Server(databases[v], v, args.workers, OUT / "gunicorn.log") for v in databases}
        order = ("on", "off", "set")
        for scenario in SCENARIOS:
            base = build_calls(scenario, args.interleaved_requests + args.warmup, tokens, trade_ids)
            calls = []
            for i, call in enumerate(base):
                for k in range(3):  # rotate who goes first, so no variant always follows another
                    variant = order[(i + k) % 3]
                    calls.append(dataclasses.replace(call, port=servers[variant].port, tag=variant))
            results, _ = loadgen.run(HOST, 0, calls, args.concurrency)
            results = results[args.warmup * 3 :]
            expected = 201 if scenario == "create" else 200
            out["scenarios"][scenario] = {
                variant: {
                    "ms": [round(r.ms, 3) for r in results if r.tag == variant],
                    "errors": sum(1 for r in results if r.tag == variant and r.status != expected),
                }
                for variant in order
            }
        # Execution time per statement inside PostgreSQL, same moments, per database.
        stats = {v: app_statement_stats(databases[v]) for v in order}
        statements = []
        for query, (calls_off, total_off) in stats["off"].items():
            calls_on, total_on = stats["on"].get(query, (0, 0.0))
            calls_set, total_set = stats["set"].get(query, (0, 0.0))
            if calls_off >= 100 and calls_on >= 50 and calls_set >= 50:
                statements.append(
                    {
                        "query": query,
                        "calls": calls_off,
                        "on_mean_ms": total_on / calls_on,
                        "off_mean_ms": total_off / calls_off,
                        "set_mean_ms": total_set / calls_set,
                    }
                )
        set_config = stats["set"].get("SELECT set_config($1, $2, $3)", (0, 0.0))[0]
        out["set_config_per_request"] = set_config / ((args.interleaved_requests + args.warmup) * len(SCENARIOS))
        out["statements"] = sorted(statements, key=lambda x: -x["calls"])
    finally:
        for server in servers.values():
            server.stop()
        for twin in databases.values():
            drop_database(twin)
    summary = report.interleaved_summary(out)
    say(
        f"interleaved check in {time.monotonic() - t0:.0f}s: "
        + "  ".join(f"{s} p99 ON/OFF {summary[s]['on_off_p99']:.2f}" for s in SCENARIOS)
    )
    return out


def delete_created(db: str) -> None:
    """Remove the create scenario's trades (owner, rls_bypass_role) and vacuum, so every round sees the same data."""
    with psycopg.connect(owner_url(db), autocommit=True) as conn:
        conn.execute("DELETE FROM trades WHERE symbol = %s", [CREATED_SYMBOL])
        conn.execute("VACUUM trades")


def prewarm(args, tokens: dict[str, str], trade_ids, password: str) -> None:
    """One unmeasured pass of every scenario's calls, so round 1 (ON) does not pay for a cold cache."""
    t0 = time.monotonic()
    server = Server(args.db, "on", args.workers, OUT / "gunicorn.log")
    try:
        tokens.update({slug: login(server.port, slug, password) for slug in (BIG, *SMALL)})
        for scenario in SCENARIOS:
            loadgen.run(HOST, server.port, build_calls(scenario, args.requests, tokens, trade_ids), args.concurrency)
    finally:
        server.stop()
        delete_created(args.db)
    say(f"prewarmed caches with one pass of every scenario in {time.monotonic() - t0:.0f}s")


def app_role_max_query_ms(db: str) -> tuple[float, str]:
    """The slowest execution of any statement the app role ran in this database (pg_stat_statements)."""
    with psycopg.connect(owner_url(db)) as conn:
        row = conn.execute(
            "SELECT max_exec_time, calls FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND userid = (SELECT oid FROM pg_roles WHERE rolname = 'alphapulse_app') "
            "ORDER BY max_exec_time DESC LIMIT 1"
        ).fetchone()
    return (row[0], f"{row[1]} calls") if row else (0.0, "no statements")


def main() -> None:
    args = parse_args()
    check_own_database(args.db)
    if not database_exists(args.db):
        raise SystemExit(f"database {args.db} does not exist: run 'make bench-data' first")
    OUT.mkdir(parents=True, exist_ok=True)
    dataset_file = OUT / "dataset.json"
    dataset = json.loads(dataset_file.read_text()) if dataset_file.exists() else {}
    password = args.password or dataset.get("password") or os.environ.get("BENCH_PASSWORD", "bench-password")
    started = time.monotonic()

    say(f"bench on {args.db}: {args.rounds} rounds ON/OFF, {args.requests} requests per scenario, "
        f"concurrency {args.concurrency}, {args.workers} gunicorn workers")  # fmt: skip
    set_state(args.db, "on")
    ids = tenant_ids(args.db)
    trade_ids = sample_trade_ids(args.db, ids)
    before = OUT / "query_stats_before.json"
    manage(args.db, "query_stats", "snapshot", str(before))

    rounds: list[dict[str, Any]] = []
    tokens: dict[str, str] = {}
    prewarm(args, tokens, trade_ids, password)
    try:
        for number in range(1, args.rounds + 1):
            pair_started = time.monotonic()
            for variant in ("on", "off"):
                rounds.append(run_round(args, number, variant, tokens, trade_ids, password))
            pair_s = time.monotonic() - pair_started
            if number >= 3 and time.monotonic() - started + pair_s + 30 > args.budget_minutes * 60:
                say(f"stopping after {number} cycles: another would pass the {args.budget_minutes:g}-minute budget")
                break
    finally:
        say("back to the ON state")
        set_state(args.db, "on")

    interleaved = None if args.no_interleaved else interleaved_check(args, tokens, trade_ids)
    compare = manage(args.db, "query_stats", "compare", str(before), "--width", "100").stdout
    (OUT / "query_stats_compare.txt").write_text(compare)
    max_query_ms, max_query_note = app_role_max_query_ms(args.db)
    with psycopg.connect(owner_url(args.db)) as conn:
        server_version = conn.execute("SHOW server_version").fetchone()[0]
    say("EXPLAIN (ANALYZE, BUFFERS) as the app role under RLS")
    subprocess.run(
        [PYTHON, "-m", "bench.plans", "--out", str(args.docs / "plans.md")],
        cwd=ROOT,
        env=db_env(args.db, RLS_ENABLED="true", PYTHONPATH=str(ROOT / "scripts")),
        check=True,
    )
    results = {
        "database": args.db,
        "dataset": {k: v for k, v in dataset.items() if k != "tenants"},
        "tenant_rows": {t["slug"]: t["rows"]["trades"] for t in dataset.get("tenants", [])},
        "settings": {
            "rounds": args.rounds,
            "requests": args.requests,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "big": BIG,
            "small": list(SMALL),
            "interleaved_requests": 0 if args.no_interleaved else args.interleaved_requests,
        },
        "rounds": rounds,
        "server_version": server_version,
        "interleaved": interleaved,
        "max_query_ms": max_query_ms,
        "max_query_note": max_query_note,
        "query_stats_compare": compare,
        "elapsed_s": time.monotonic() - started,
    }
    (OUT / "results.json").write_text(json.dumps(results))
    report.write(results, args.docs)
    say(f"done in {results['elapsed_s']:.0f}s: {args.docs / 'README.md'}, latency.png, plans.md")


if __name__ == "__main__":
    main()
