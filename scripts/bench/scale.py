"""`make bench-scale`: how cost grows with tenants and rows, RLS ON -> docs/benchmarks/scale.md.

For each configuration (bench.scale_config; default 100, 1,000 and 10,000 tenants with
1M trades, and 100 tenants with 10M; the whale `bench-000` holds half of every table):

1. the database `alphapulse_scale_t<T>_r<R>` is built by bench.data, or reused when its
   recorded parameters (the database comment a finished build writes) are the same;
   then migrated to the latest state (a new migration lands on the kept database once);
2. a copy of it (CREATE DATABASE ... TEMPLATE, dropped afterwards: the writes of the
   create and update scenarios never reach the kept database) is served by one gunicorn,
   RLS ON (bench.harness.Server);
3. list, filtered list, a filtered list on a symbol no tenant holds, detail, create and
   update are sent to the smallest tenant and the whale in turn (bench.harness.calls_for),
   after a discarded warm-up; p50 and p99 per tenant;
4. before 3, bench.plans --json --generic on the copy: EXPLAIN (ANALYZE, BUFFERS) of the list,
   filtered and detail queries as the app role under RLS (tenant set by SET LOCAL in the
   transaction), and what a generic plan would do.

Figures go to bench/out/scale.json (a run of a subset replaces only its configurations)
and the report to docs/benchmarks/scale.md (bench.scale_report).

Exit status: 0 done; 1 refused or failed (a SCALE that does not parse, a database that is not
the benchmarks' own, a build or a step that failed), with a one-line message.

    SCALE=100,1000 BENCH_SCALE_REQUESTS=200 make bench-scale     # a quick subset
    PYTHONPATH=scripts .venv/bin/python -m bench.scale --only 100x10m --rebuild
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from tqdm import tqdm

from bench import loadgen
from bench.common import (
    DOCS,
    OUT,
    PYTHON,
    ROOT,
    check_own_database,
    database_exists,
    db_env,
    drop_database,
    owner_url,
    percentile,
    say,
)
from bench.data import PARAMETERS_KEY, recorded_build
from bench.harness import HOST, Server, calls_for, create_twin, login, sample_trade_ids, set_state, tenant_ids
from bench.scale_config import DEFAULT_CONFIGS, Config, ConfigError, parse_configs, reusable

SCENARIOS = ("list", "filtered", "absent", "detail", "create", "update")
RESULTS = OUT / "scale.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        default=os.environ.get("SCALE", DEFAULT_CONFIGS),
        help=f"configurations, TENANTS[xTRADES] comma-separated (env SCALE; default {DEFAULT_CONFIGS})",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=int(os.environ.get("BENCH_SCALE_REQUESTS", "400")),
        help="per scenario, half to each tenant (env BENCH_SCALE_REQUESTS)",
    )
    parser.add_argument(
        "--absent-requests",
        type=int,
        default=int(os.environ.get("BENCH_SCALE_ABSENT", "60")),
        help="for the absent-symbol list, which may take a second each before the fix",
    )
    parser.add_argument("--warmup", type=int, default=int(os.environ.get("BENCH_SCALE_WARMUP", "20")))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", "2")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "2")))
    parser.add_argument("--rebuild", action="store_true", help="build the databases even if reusable")
    parser.add_argument("--password", default=os.environ.get("BENCH_PASSWORD", "bench-password"))
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from bench/out/scale.json")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="only keep the last run's figures as docs/benchmarks/scale-before.json (before a fix)",
    )
    return parser.parse_args(argv)  # fmt: skip


def recorded(db: str) -> dict[str, Any] | None:
    with psycopg.connect(owner_url("postgres"), autocommit=True) as admin:
        return recorded_build(admin, db)


def ensure_built(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    """Build the configuration's database unless a finished build with the same parameters is there."""
    db = config.database
    check_own_database(db)
    record = recorded(db) if database_exists(db) else None
    if not args.rebuild and record and reusable(record.get(PARAMETERS_KEY), config):
        say(f"{config.name}: reusing {db} (built in {record.get('build_seconds', '?')}s)")
        return {"reused": True, "build_seconds": record.get("build_seconds")}
    say(f"{config.name}: building {db} with bench.data ({config.trades:,} trades, {config.tenants:,} tenants)")
    t0 = time.monotonic()
    command = [PYTHON, "-m", "bench.data", "--db-name", db, *config.data_arguments(), "--password", args.password,
               "--summary", str(OUT / f"scale-{db}.json")]  # fmt: skip
    if args.no_progress:
        command.append("--no-progress")
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")})
    if result.returncode != 0:
        raise SystemExit(f"bench.data failed for {config.name} (exit {result.returncode})")
    return {"reused": False, "build_seconds": round(time.monotonic() - t0, 1)}


def scenario_calls(scenario: str, n: int, tokens, trade_ids, config: Config) -> list[loadgen.Call]:
    return calls_for(scenario, n, tokens, trade_ids, big=config.whale, small=(config.small,))


def measure(config: Config, db: str, args: argparse.Namespace) -> dict[str, Any]:
    """p50/p99 of each scenario for the small tenant and the whale, interleaved, on one RLS ON server."""
    ids = tenant_ids(db, (config.whale, config.small))
    trade_ids = sample_trade_ids(db, ids, n=200)
    server = Server(db, "on", args.workers, OUT / "gunicorn-scale.log")
    out: dict[str, Any] = {}
    try:
        tokens = {slug: login(server.port, slug, args.password) for slug in (config.whale, config.small)}
        for scenario in tqdm(SCENARIOS, desc=f"{config.name} scenarios", disable=args.no_progress):
            n = args.absent_requests if scenario == "absent" else args.requests
            calls = scenario_calls(scenario, args.warmup + n, tokens, trade_ids, config)
            results, _ = loadgen.run(HOST, server.port, calls, args.concurrency)
            results = results[args.warmup :]
            expected = 201 if scenario == "create" else 200
            out[scenario] = {}
            for label in ("small", "big"):
                mine = [r for r in results if r.tenant == label]
                ms = [r.ms for r in mine]
                out[scenario][label] = {
                    "n": len(ms),
                    "p50": percentile(ms, 50),
                    "p99": percentile(ms, 99),
                    "errors": sum(1 for r in mine if r.status != expected),
                }
    finally:
        server.stop()
    return out


def plans(config: Config, db: str) -> dict[str, Any]:
    target = OUT / f"scale-plans-{config.database}.json"
    command = [PYTHON, "-m", "bench.plans", "--big", config.whale, "--small", config.small, "--json", str(target),
               "--generic"]  # fmt: skip
    env = db_env(db, RLS_ENABLED="true", PYTHONPATH=str(ROOT / "scripts"))
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise SystemExit(f"bench.plans failed for {config.name} (exit {result.returncode}): {last}")
    return json.loads(target.read_text())


def one_configuration(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    build = ensure_built(config, args)
    db, twin = config.database, f"{config.database}_run"
    t0 = time.monotonic()
    set_state(db, "on")  # a migration added since the build lands on the kept database, once
    build["migrate_seconds"] = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    create_twin(db, twin)
    build["copy_seconds"] = round(time.monotonic() - t0, 1)
    try:
        # Plans first, on the copy as built (the create scenario then adds trades to both tenants).
        say(f"{config.name}: EXPLAIN (ANALYZE, BUFFERS) and generic plans")
        plan_set = plans(config, twin)
        measured = measure(config, twin, args)
    finally:
        drop_database(twin)
    return {
        "config": {"name": config.name, **config.parameters(), "whale": config.whale, "small": config.small},
        "build": build,
        "scenarios": measured,
        "plans": plan_set,
        "settings": {k: getattr(args, k) for k in ("requests", "absent_requests", "warmup", "concurrency", "workers")},
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from bench import scale_report

    if args.report_only or args.baseline:
        if not RESULTS.exists():
            raise SystemExit("bench.scale: no bench/out/scale.json yet: run make bench-scale first")
        results = json.loads(RESULTS.read_text())
        if args.baseline:
            (args.docs / scale_report.BEFORE).write_text(json.dumps(scale_report.baseline(results), indent=1) + "\n")
        scale_report.write(results, args.docs)
        return
    try:
        configs = parse_configs(args.only)
    except ConfigError as exc:
        raise SystemExit(f"bench.scale: {exc}") from None
    OUT.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"configs": {}}
    started = time.monotonic()
    for config in configs:
        entry = one_configuration(config, args)
        results["configs"][config.name] = entry
        s = entry["scenarios"]
        say(f"{config.name} in {entry['elapsed_s']:.0f}s: "
            + "  ".join(f"{sc} small/whale p50 {s[sc]['small']['p50']:.1f}/{s[sc]['big']['p50']:.1f} ms"
                        for sc in SCENARIOS))  # fmt: skip
        RESULTS.write_text(json.dumps(results, indent=1))
    scale_report.write(results, args.docs)
    say(f"done in {time.monotonic() - started:.0f}s: {args.docs / 'scale.md'}")


if __name__ == "__main__":
    sys.exit(main())
