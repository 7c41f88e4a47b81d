"""Single PostgreSQL vs the local Citus cluster, through the API, in one run.

`make bench-citus` (PYTHONPATH=scripts python -m bench.citus): builds the same
demo data (load_demo, seeded per tenant) in a database of its own on the
single node (.env) and on the cluster (.env.citus, distributed by the
migrations), serves each with gunicorn (same workers, same settings), logs in
as each demo tenant's user and then alternates blocks of calls between the two
servers, round after round: list (a 50-row page), detail (one trade by id),
create (one trade). Latency p50/p99 per backend and call over all rounds,
throughput as the median of the blocks' requests per second. Writes
docs/benchmarks/citus.md.

What it does not show: on a 2-core machine the cluster's three PostgreSQL
servers, both gunicorns and the client share the same cores, so the cluster
pays the coordinator's extra hop without getting any extra hardware. It
measures the cost of the routing, not the capacity of a cluster.
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
from psycopg import sql

from bench import loadgen
from bench.common import DOCS, PYTHON, ROOT, machine, median, percentile, say

DB = "alphapulse_bench_citus"
KINDS = ("list", "detail", "create")
USERS = {"acme": "alice", "globex": "bob", "initech": "carol"}
PASSWORD = "alphapulse-demo"
SERVER_ENV = {
    "PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
    "TENANT_RATE_LIMITS": "free=none,starter=none,pro=none,enterprise=none",
    "LOG_LEVEL": "ERROR",
    "CONN_MAX_AGE": "60",
}


FILE_KEYS: set[str] = set()


def env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        raise SystemExit(f"{path.name} is missing: run 'make setup' and 'make citus-up' first")
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    FILE_KEYS.update(values)
    return values


class Backend:
    def __init__(self, name: str, env_path: Path, citus: bool) -> None:
        self.name, self.citus = name, citus
        self.env = env_file(env_path)
        self.env_path = env_path
        self.server: subprocess.Popen | None = None
        self.port = 0

    def url(self, var: str, dbname: str) -> str:
        return f"{self.env[var].rsplit('/', 1)[0]}/{dbname}"

    def process_env(self) -> dict[str, str]:
        # bench.common put .env's values into the environment, where they would
        # win over .env.citus: only this backend's file speaks for it.
        inherited = {k: v for k, v in os.environ.items() if k not in FILE_KEYS}
        return {
            **inherited,
            **self.env,
            "ENV_FILE": str(self.env_path),
            "DATABASE_URL": self.url("DATABASE_URL", DB),
            "MIGRATION_DATABASE_URL": self.url("MIGRATION_DATABASE_URL", DB),
            **SERVER_ENV,
        }

    def manage(self, *args: str) -> None:
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.process_env(), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(f"[{self.name}] manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def recreate(self) -> None:
        if self.citus:
            env = {**os.environ, "CITUS_PORT": self.env["PGPORT"]}
            subprocess.run(["bash", "scripts/citus.sh", "createdb", DB], cwd=ROOT, env=env, check=True)
            return
        with psycopg.connect(self.url("MIGRATION_DATABASE_URL", "postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))

    def drop(self) -> None:
        if self.citus:
            env = {**os.environ, "CITUS_PORT": self.env["PGPORT"]}
            subprocess.run(["bash", "scripts/citus.sh", "dropdb", DB], cwd=ROOT, env=env, check=True)
            return
        with psycopg.connect(self.url("MIGRATION_DATABASE_URL", "postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))

    def start(self, port: int, workers: int) -> None:
        self.port = port
        self.server = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "alphapulse.wsgi", "--bind", f"127.0.0.1:{port}"]
            + ["--workers", str(workers)],
            cwd=ROOT,
            env=self.process_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, _ = loadgen.request("127.0.0.1", port, loadgen.Call("GET", "/health"), timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"[{self.name}] gunicorn did not answer /health on port {port}")

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()

    def login(self) -> dict[str, str]:
        tokens = {}
        for slug, user in USERS.items():
            body = loadgen.json_body({"tenant": slug, "username": user, "password": PASSWORD})
            login = loadgen.Call("POST", "/api/auth/token/", body=body)
            status, payload = loadgen.request("127.0.0.1", self.port, login)
            if status != 200:
                raise SystemExit(f"[{self.name}] login of {slug} failed: {status} {payload[:200]!r}")
            tokens[slug] = json.loads(payload)["access"]
        return tokens

    def trade_ids(self, tokens: dict[str, str]) -> dict[str, list[str]]:
        ids = {}
        for slug, token in tokens.items():
            call = loadgen.Call("GET", "/api/trades/?page_size=100", token=token)
            _, payload = loadgen.request("127.0.0.1", self.port, call)
            ids[slug] = [row["id"] for row in json.loads(payload)["results"]]
        return ids


def calls(kind: str, n: int, tokens: dict[str, str], ids: dict[str, list[str]]) -> list[loadgen.Call]:
    slugs = list(tokens)
    out = []
    for i in range(n):
        slug = slugs[i % len(slugs)]
        if kind == "list":
            out.append(loadgen.Call("GET", "/api/trades/?page_size=50", tokens[slug], tenant=slug, tag=kind))
        elif kind == "detail":
            trade = ids[slug][i % len(ids[slug])]
            out.append(loadgen.Call("GET", f"/api/trades/{trade}/", tokens[slug], tenant=slug, tag=kind))
        else:
            body = loadgen.json_body({"symbol": "BENCH", "side": "buy", "quantity": "1", "price": "10.5"})
            out.append(loadgen.Call("POST", "/api/trades/", tokens[slug], body=body, tenant=slug, tag=kind))
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=150, help="per call kind, backend and round")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per backend")
    parser.add_argument("--trades", type=int, default=2000, help="demo trades per tenant")
    parser.add_argument("--out", type=Path, default=DOCS / "citus.md")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    backends = [Backend("single", ROOT / ".env", citus=False), Backend("citus", ROOT / ".env.citus", citus=True)]
    samples: dict[tuple[str, str], list[float]] = {}
    rates: dict[tuple[str, str], list[float]] = {}
    errors: dict[str, int] = {b.name: 0 for b in backends}
    try:
        for number, backend in enumerate(backends):
            say(f"{backend.name}: database {DB}, migrate, load_demo --trades {args.trades}")
            backend.recreate()
            backend.manage("migrate")
            backend.manage("load_demo", "--trades", str(args.trades))
            backend.start(8110 + number, args.workers)
        prepared = {b.name: (tokens := b.login(), b.trade_ids(tokens)) for b in backends}
        for b in backends:  # warm-up: connections, caches, shard metadata
            tokens, ids = prepared[b.name]
            loadgen.run("127.0.0.1", b.port, [c for k in KINDS for c in calls(k, 30, tokens, ids)], args.concurrency)
        for round_number in range(args.rounds):
            order = backends if round_number % 2 == 0 else backends[::-1]
            for kind in KINDS:
                for b in order:
                    tokens, ids = prepared[b.name]
                    block = calls(kind, args.requests, tokens, ids)
                    results, wall = loadgen.run("127.0.0.1", b.port, block, args.concurrency)
                    good = [r for r in results if r.status in (200, 201)]
                    errors[b.name] += len(results) - len(good)
                    samples.setdefault((b.name, kind), []).extend(r.ms for r in good)
                    rates.setdefault((b.name, kind), []).append(len(good) / wall)
            say(f"round {round_number + 1}/{args.rounds} done")
    finally:
        for b in backends:
            b.stop()
    for b in backends:
        b.drop()
    write_report(args, samples, rates, errors)


def write_report(args, samples, rates, errors) -> None:
    rows = []
    figures: dict[str, Any] = {}
    for kind in KINDS:
        single, cluster = samples[("single", kind)], samples[("citus", kind)]
        line = {
            "p50": (median(single), median(cluster)),
            "p99": (percentile(single, 99), percentile(cluster, 99)),
            "rps": (median(rates[("single", kind)]), median(rates[("citus", kind)])),
        }
        figures[kind] = line
        rows.append(
            f"| {kind} | {line['p50'][0]:.1f} | {line['p50'][1]:.1f} | {line['p50'][1] / line['p50'][0]:.2f} "
            f"| {line['p99'][0]:.1f} | {line['p99'][1]:.1f} "
            f"| {line['rps'][0]:.0f} | {line['rps'][1]:.0f} | {line['rps'][1] / line['rps'][0]:.2f} |"
        )
    info = machine()
    text = "\n".join(
        [
            "# Single PostgreSQL vs the local Citus cluster, through the API",
            "",
            f"`make bench-citus` on {info['cores']} cores ({info['cpu']}, {info['memory_gib']} GiB), "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: the same demo data "
            f"(load_demo --trades {args.trades}, 3 tenants) on both, gunicorn with {args.workers} sync workers "
            f"each, {args.concurrency} client threads, {args.rounds} rounds of {args.requests} calls per kind "
            "and backend, the backends alternating (ABAB, BABA) within every round. Milliseconds per request "
            "from connect to last byte; throughput is the median over the rounds' blocks.",
            "",
            "| call | p50 single | p50 Citus | ratio | p99 single | p99 Citus | req/s single | req/s Citus | ratio |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Non-2xx answers: single {errors['single']}, Citus {errors['citus']}.",
            "",
            "What this shows: the price of the coordinator's extra hop for requests that route to one worker "
            "(every API call here does). What it does not: the cluster's capacity. Here the coordinator, both "
            "workers, both gunicorns and the client share the same two cores, so the cluster has more "
            "processes and no more hardware; the ratios are the upper bound of the overhead, not a forecast.",
            "",
            "<!-- figures " + json.dumps(figures) + " -->",
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    say(f"wrote {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
