"""`make bench`: RLS ON vs OFF vs the single-tenant floor, in one interleaved run.

Three copies of the bench database of `make bench-data` (CREATE DATABASE ...
TEMPLATE, dropped afterwards), three gunicorn servers up at once:

- ON:    every migration applied (RLS enabled and forced), RLS_ENABLED=true;
- OFF:   us004 rolled back (no policies, RLS disabled), RLS_ENABLED=false:
         the product's tenant middleware and lookups, no tenant setting;
- FLOOR: the OFF database served by stock DRF and simplejwt (bench.floor):
         no tenant middleware, no tenant lookups, no RLS; what a
         single-tenant AlphaPulse does.

Every request goes to the three servers one after the other (who goes first
rotates), so all three see the same moment of a shared machine's load. Each
repetition runs every scenario (list, filtered list, detail, create, update)
with a discarded warm-up; figures per repetition, ratios per repetition, then
the median over repetitions and the spread (min-max). Errors are counted per
variant. Writes bench/out/threeway.json and docs/benchmarks/README.md (with
latency.png), then plans.md (bench.plans).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

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
    load_average,
    median,
    percentile,
    say,
)
from bench.harness import (
    BIG,
    CREATED_SYMBOL,
    HOST,
    SMALL,
    Server,
    calls_for,
    create_twin,
    login,
    sample_trade_ids,
    set_state,
    tenant_ids,
)

VARIANTS = ("on", "off", "floor")
# variant -> the database state it serves (bench.harness.VARIANTS) and the Django settings module
STATE = {"on": "on", "off": "off", "floor": "off"}
SETTINGS = {"on": "alphapulse.settings", "off": "alphapulse.settings", "floor": "bench.floor.settings"}
SCENARIOS = ("list", "filtered", "detail", "create", "update")
TITLES = {
    "list": "list: `GET /api/trades/?page_size=50`",
    "filtered": "filtered list: `GET /api/trades/?symbol=S&side=buy`",
    "detail": "detail: `GET /api/trades/<id>/`",
    "create": "create: `POST /api/trades/`",
    "update": "update: `PATCH /api/trades/<id>/`",
}
# Issue 25's goals: ON vs the single-tenant floor p50 <= 1.05 and p99 <= 1.10; ON vs OFF p50 <= 1.02
# (and no endpoint where ON is slower in every repetition: threeway_report).
TARGETS = {"on_off_p50": 1.02, "on_floor_p50": 1.05, "on_floor_p99": 1.10}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get("BENCH_DB", "alphapulse_bench"))
    parser.add_argument("--repetitions", type=int, default=int(os.environ.get("BENCH_REPETITIONS", "5")))
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_REQUESTS", "400")),
                        help="per variant, scenario and repetition")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=int(os.environ.get("BENCH_WARMUP", "40")),
                        help="per variant and scenario, discarded, at the start of every repetition")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", "2")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "2")))
    parser.add_argument("--password", default=None, help="bench users' password (default: from bench-data)")
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--profile-again", action="store_true", help="only re-take the last run's profiles")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from the last run")
    return parser.parse_args()


def stats(ms: list[float], concurrency: int) -> dict[str, float]:
    busy = sum(ms) / 1000 / max(1, concurrency)
    return {
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        # Interleaved servers share the wall clock: a variant's throughput is its requests over the
        # time the client threads spent waiting for it.
        "throughput": len(ms) / busy if busy else 0.0,
        "n": len(ms),
    }


def one_repetition(args, servers: dict[str, Server], tokens, trade_ids, number: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scenario in SCENARIOS:
        # The same requests for every variant, each with a token of its own server (a login is a
        # session in that server's database copy).
        base = {v: calls_for(scenario, args.requests + args.warmup, tokens[v], trade_ids) for v in VARIANTS}
        calls = []
        for i in range(len(base[VARIANTS[0]])):
            for k in range(len(VARIANTS)):  # rotate who goes first
                variant = VARIANTS[(i + k + number) % len(VARIANTS)]
                calls.append(dataclasses.replace(base[variant][i], port=servers[variant].port, tag=variant))
        results, _ = loadgen.run(HOST, 0, calls, args.concurrency)
        results = results[args.warmup * len(VARIANTS) :]
        expected = 201 if scenario == "create" else 200
        out[scenario] = {}
        for variant in VARIANTS:
            mine = [r for r in results if r.tag == variant]
            errors = [r for r in mine if r.status != expected]
            out[scenario][variant] = {
                **stats([r.ms for r in mine], args.concurrency),
                "errors": len(errors),
                "error_samples": [dataclasses.asdict(r) for r in errors[:3]],
                "ms": [round(r.ms, 3) for r in mine],
            }
    return out


def ratios(rep: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for scenario, by in rep.items():
        on, off, floor = by["on"], by["off"], by["floor"]
        out[scenario] = {
            "on_off_p50": on["p50"] / off["p50"],
            "on_off_p95": on["p95"] / off["p95"],
            "on_off_p99": on["p99"] / off["p99"],
            "on_off_throughput": on["throughput"] / off["throughput"],
            "on_floor_p50": on["p50"] / floor["p50"],
            "on_floor_p99": on["p99"] / floor["p99"],
            "off_floor_p50": off["p50"] / floor["p50"],
        }
    return out


PROFILE_ROUNDS, PROFILE_REQUESTS = 3, 80


def interleaved_profiles(databases: dict[str, str]) -> dict[str, dict[str, dict[str, float]]]:
    """bench.profile per variant, in rounds (ON, OFF, FLOOR, ON, ...) so load drift hits all three;
    per phase, the median of the rounds' medians."""
    say(f"per-phase profile of one request, in process: {PROFILE_ROUNDS} rounds of the three variants")
    runs: dict[str, list[dict[str, dict[str, float]]]] = {v: [] for v in VARIANTS}
    for _ in range(PROFILE_ROUNDS):
        for v in VARIANTS:
            runs[v].append(run_profile(databases[v], SETTINGS[v]))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for v, rounds in runs.items():
        out[v] = {}
        for scenario in rounds[0]:
            phases = {p for r in rounds for p in r[scenario]}
            out[v][scenario] = {p: median([r[scenario].get(p, 0.0) for r in rounds]) for p in phases}
    return out


def profile_again(args: argparse.Namespace) -> None:
    """Re-take the profiles of the last run (bench/out/threeway.json) on fresh copies and rewrite the report."""
    results = json.loads((OUT / "threeway.json").read_text())
    databases = {v: f"{args.db}_{v}" for v in VARIANTS}
    try:
        for variant, twin in databases.items():
            create_twin(args.db, twin)
            set_state(twin, STATE[variant])
        results["profiles"] = interleaved_profiles(databases)
    finally:
        for twin in databases.values():
            drop_database(twin)
    (OUT / "threeway.json").write_text(json.dumps(results))
    from bench import threeway_report

    threeway_report.write(results, args.docs)
    say(f"profiles re-taken: {args.docs / 'README.md'}")


def run_profile(db: str, settings_module: str) -> dict[str, dict[str, float]]:
    result = subprocess.run(
        [
            PYTHON,
            "-m",
            "bench.profile",
            "--db",
            db,
            "--settings",
            settings_module,
            "--requests",
            str(PROFILE_REQUESTS),
            "--json",
        ],  # fmt: skip
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_args()
    check_own_database(args.db)
    if args.profile_again:
        profile_again(args)
        return
    if args.report_only:
        from bench import threeway_report

        threeway_report.write(json.loads((OUT / "threeway.json").read_text()), args.docs)
        return
    if not database_exists(args.db):
        raise SystemExit(f"database {args.db} does not exist: run 'make bench-data' first")
    OUT.mkdir(parents=True, exist_ok=True)
    dataset_file = OUT / "dataset.json"
    dataset = json.loads(dataset_file.read_text()) if dataset_file.exists() else {}
    password = args.password or dataset.get("password") or os.environ.get("BENCH_PASSWORD", "bench-password")
    started = time.monotonic()
    set_state(args.db, "on")
    ids = tenant_ids(args.db)
    trade_ids = sample_trade_ids(args.db, ids)
    databases = {v: f"{args.db}_{v}" for v in VARIANTS}
    load_before = load_average()
    say(f"three-way bench: {args.repetitions} repetitions x {args.requests} requests per variant and scenario, "
        f"concurrency {args.concurrency}, {args.workers} workers per server; load average {load_before}")  # fmt: skip
    servers: dict[str, Server] = {}
    repetitions: list[dict[str, Any]] = []
    loads = []
    try:
        for variant, twin in databases.items():
            create_twin(args.db, twin)
            set_state(twin, STATE[variant])
        for v in VARIANTS:  # one by one, so a server that fails to start leaves the others stoppable
            servers[v] = Server(databases[v], STATE[v], args.workers, OUT / "gunicorn.log", SETTINGS[v])
        # A login starts a session in its own server's database copy: ON and OFF each log in; the floor
        # (stock simplejwt, no sessions, no login route) verifies ON's tokens with the same key.
        tokens = {v: {slug: login(servers[v].port, slug, password) for slug in (BIG, *SMALL)} for v in ("on", "off")}
        tokens["floor"] = tokens["on"]
        for number in range(1, args.repetitions + 1):
            t0 = time.monotonic()
            rep = one_repetition(args, servers, tokens, trade_ids, number)
            repetitions.append(rep)
            loads.append(load_average())
            r = ratios(rep)
            say(f"repetition {number} in {time.monotonic() - t0:.0f}s (load {loads[-1]}): "
                + "  ".join(f"{s} ON/OFF p50 {r[s]['on_off_p50']:.3f} ON/floor p50 {r[s]['on_floor_p50']:.2f}"
                            for s in SCENARIOS))  # fmt: skip
        for server in servers.values():
            server.stop()
        profiles = interleaved_profiles(databases)
    finally:
        for server in servers.values():
            server.stop()
        for twin in databases.values():
            drop_database(twin)
    say("EXPLAIN (ANALYZE, BUFFERS) as the app role under RLS")
    subprocess.run(
        [PYTHON, "-m", "bench.plans", "--out", str(args.docs / "plans.md")],
        cwd=ROOT,
        env=db_env(args.db, RLS_ENABLED="true", PYTHONPATH=str(ROOT / "scripts")),
        check=True,
    )
    results = {
        "database": args.db,
        "dataset": {k: v for k, v in dataset.items() if k not in ("tenants", "password")},
        "tenant_rows": {t["slug"]: t["rows"]["trades"] for t in dataset.get("tenants", [])},
        "settings": {k: getattr(args, k) for k in ("repetitions", "requests", "warmup", "concurrency", "workers")},
        "big": BIG,
        "small": list(SMALL),
        "created_symbol": CREATED_SYMBOL,
        "repetitions": repetitions,
        "profiles": profiles,
        "load_before": load_before,
        "loads": loads,
        "elapsed_s": time.monotonic() - started,
    }
    (OUT / "threeway.json").write_text(json.dumps(results))
    from bench import threeway_report

    threeway_report.write(results, args.docs)
    say(f"done in {results['elapsed_s']:.0f}s: {args.docs / 'README.md'}")


def summary(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per scenario: median over repetitions of each variant's figures and of each ratio, with min-max."""
    reps = results["repetitions"]
    per_rep = [ratios(rep) for rep in reps]
    out: dict[str, dict[str, Any]] = {}
    for scenario in SCENARIOS:
        row: dict[str, Any] = {}
        for variant in VARIANTS:
            for key in ("p50", "p95", "p99", "throughput"):
                values = [rep[scenario][variant][key] for rep in reps]
                row[f"{variant}_{key}"] = median(values)
            row[f"{variant}_errors"] = sum(rep[scenario][variant]["errors"] for rep in reps)
            row[f"{variant}_n"] = sum(rep[scenario][variant]["n"] for rep in reps)
        for key in per_rep[0][scenario]:
            values = [r[scenario][key] for r in per_rep]
            row[key] = median(values)
            row[f"{key}_min"] = min(values)
            row[f"{key}_max"] = max(values)
        out[scenario] = row
    return out


if __name__ == "__main__":
    main()
