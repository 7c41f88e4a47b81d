"""What trading/0010's two trade indexes cost a write, measured apart from the machine's load.

    PYTHONPATH=scripts .venv/bin/python -m bench.index_cost [--only 100x1m] [--repetitions 3] [--requests 300]

Two copies of a bench.scale database (built by `make bench-scale`): WITH the indexes as
migrated, and WITHOUT them (dropped on that copy by the owner). Two gunicorns, RLS ON; every
create and update request goes to both, one after the other, who goes first alternating, so
both see the same moment of a shared machine (as `make bench` does for ON and OFF). Per
repetition the p50 of each, then the median over repetitions of the WITH/WITHOUT ratio. The
figures go into bench/out/scale.json ("index_cost") and docs/benchmarks/scale.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any

import psycopg
from psycopg import sql

from bench import loadgen
from bench.common import OUT, drop_database, median, owner_url, percentile, say
from bench.harness import HOST, Server, calls_for, create_twin, login, sample_trade_ids, set_state, tenant_ids
from bench.scale_config import parse_configs

INDEXES = ("idx_trades_tenant_symbol", "idx_trades_tenant_user_symbol")
VARIANTS = ("with", "without")
SCENARIOS = ("create", "update")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="100x1m", help="one bench.scale configuration (its database must exist)")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300, help="per variant, scenario and repetition")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", "2")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "2")))
    parser.add_argument("--password", default=os.environ.get("BENCH_PASSWORD", "bench-password"))
    return parser.parse_args()


def drop_indexes(db: str) -> None:
    with psycopg.connect(owner_url(db), autocommit=True) as conn:
        for name in INDEXES:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name)))


def main() -> None:
    args = parse_args()
    config = parse_configs(args.only)[0]
    set_state(config.database, "on")
    twins = {v: f"{config.database}_{v}" for v in VARIANTS}
    servers: dict[str, Server] = {}
    ratios: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    p50s: dict[str, dict[str, list[float]]] = {s: {v: [] for v in VARIANTS} for s in SCENARIOS}
    try:
        for twin in twins.values():
            create_twin(config.database, twin)
        drop_indexes(twins["without"])
        ids = tenant_ids(twins["with"], (config.whale, config.small))
        trade_ids = sample_trade_ids(twins["with"], ids, n=200)
        for v in VARIANTS:
            servers[v] = Server(twins[v], "on", args.workers, OUT / "gunicorn-index-cost.log")
        tokens = {
            v: {s: login(servers[v].port, s, args.password) for s in (config.whale, config.small)} for v in VARIANTS
        }
        for number in range(args.repetitions):
            for scenario in SCENARIOS:
                n = args.requests + args.warmup
                base = {
                    v: calls_for(scenario, n, tokens[v], trade_ids, big=config.whale, small=(config.small,))
                    for v in VARIANTS
                }
                calls = []
                for i in range(n):
                    for k in range(2):
                        v = VARIANTS[(i + k + number) % 2]
                        calls.append(dataclasses.replace(base[v][i], port=servers[v].port, tag=v))
                results, _ = loadgen.run(HOST, 0, calls, args.concurrency)
                results = results[args.warmup * 2 :]
                for v in VARIANTS:
                    p50s[scenario][v].append(percentile([r.ms for r in results if r.tag == v], 50))
                ratios[scenario].append(p50s[scenario]["with"][-1] / p50s[scenario]["without"][-1])
            say(
                f"repetition {number + 1}: " + "  ".join(f"{s} WITH/WITHOUT p50 {ratios[s][-1]:.3f}" for s in SCENARIOS)
            )
    finally:
        for server in servers.values():
            server.stop()
        for twin in twins.values():
            drop_database(twin)
    summary: dict[str, Any] = {
        "config": config.name,
        "settings": {k: getattr(args, k) for k in ("repetitions", "requests", "warmup", "concurrency", "workers")},
        "scenarios": {
            s: {
                "with_p50": median(p50s[s]["with"]),
                "without_p50": median(p50s[s]["without"]),
                "ratio": median(ratios[s]),
                "ratio_min": min(ratios[s]),
                "ratio_max": max(ratios[s]),
            }
            for s in SCENARIOS
        },
    }
    path = OUT / "scale.json"
    results = json.loads(path.read_text()) if path.exists() else {"configs": {}}
    results["index_cost"] = summary
    path.write_text(json.dumps(results, indent=1))
    say(json.dumps(summary["scenarios"]))


if __name__ == "__main__":
    main()
