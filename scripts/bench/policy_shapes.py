"""Which shape of the tenant policy to use on both backends, measured on the single node.

    PYTHONPATH=scripts .venv/bin/python -m bench.policy_shapes --db alphapulse_bench

On the bench database (`make bench-data`: 1M trades, the biggest tenant holds
half of them) this swaps the two tenant policies of `trades` between three
shapes of "the current tenant", and runs the same pgbench scripts as the app
role for each, interleaved round by round so drift hits every shape alike:

- subselect: `(SELECT NULLIF(current_setting(...), '')::uuid)` (an InitPlan;
  Citus refuses it on distributed tables);
- inline:    `NULLIF(current_setting(...), '')::uuid`;
- function:  `current_tenant_id()`, a `LANGUAGE sql STABLE` function around
  the inline expression.

Queries, each in its own transaction that starts with `SET LOCAL`:
list (the API's first page), detail (by tenant and id), insert (rolled back,
so the table does not grow), all three with the API's explicit
`tenant_id =` beside the policy; and rowfilter: `count(*) ... WHERE price > x`
with no explicit tenant filter, so the policy alone selects the big tenant's
500k rows and is evaluated as a filter row by row. It prints, per shape, the
median tps and mean latency over the rounds and the median of the per-round
tps ratios to the subselect, plus the rowfilter plans.
The policies are put back to the shape they had when it ends.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from bench.common import app_url, check_own_database, owner_url

SETTING = sql.Literal("app.current_tenant_id")
SHAPES: dict[str, sql.Composable] = {
    "subselect": sql.SQL("(SELECT NULLIF(current_setting({}, true), '')::uuid)").format(SETTING),
    "inline": sql.SQL("NULLIF(current_setting({}, true), '')::uuid").format(SETTING),
    "function": sql.SQL("public.bench_current_tenant_id()"),
}
FUNCTION = sql.SQL(
    "CREATE OR REPLACE FUNCTION public.bench_current_tenant_id() RETURNS uuid "
    "LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT NULLIF(current_setting({}, true), '')::uuid $$"
).format(SETTING)

COLUMNS = "id, tenant_id, user_id, symbol, side, quantity, price, executed_at, created_at"
SCRIPTS = {
    "list": f"SELECT {COLUMNS} FROM trades WHERE tenant_id = ':tenant' ORDER BY created_at DESC, id DESC LIMIT 51;",
    "detail": f"SELECT {COLUMNS} FROM trades WHERE tenant_id = ':tenant' AND id = ':trade' LIMIT 21;",
    "insert": (
        f"INSERT INTO trades ({COLUMNS}) VALUES (gen_random_uuid(), ':tenant', ':user', 'AAPL', 'buy', 1, 1, "
        "now(), now());"
    ),
    # No explicit tenant filter: the policy alone picks the tenant's rows.
    "rowfilter": "SELECT count(*) FROM trades WHERE price > 100;",
}
# Seconds per (shape, query) and round; rowfilter scans 500k rows per call, so fewer calls.
DURATION = {"list": 3, "detail": 3, "insert": 3, "rowfilter": 5}


def set_shape(conn: psycopg.Connection, shape: str) -> None:
    tenant = SHAPES[shape]
    with conn.transaction():
        conn.execute(
            sql.SQL("ALTER POLICY tenant_isolation_policy ON trades USING (tenant_id = {t}) WITH CHECK (tenant_id = {t})")
            .format(t=tenant)
        )
        conn.execute(sql.SQL("ALTER POLICY tenant_insert_policy ON trades WITH CHECK (tenant_id = {})").format(tenant))


def current_shape(conn: psycopg.Connection) -> str:
    (qual,) = conn.execute(
        "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy "
        "WHERE polrelid = 'trades'::regclass AND polname = 'tenant_isolation_policy'"
    ).fetchone()
    if "bench_current_tenant_id" in qual:
        return "function"
    return "subselect" if "SELECT" in qual else "inline"


def pgbench(url: str, script: Path, seconds: int, variables: dict[str, str]) -> tuple[float, float]:
    defines = [arg for name, value in variables.items() for arg in ("-D", f"{name}={value}")]
    result = subprocess.run(
        ["pgbench", "-n", "-c", "1", "-T", str(seconds), "-f", str(script), *defines, url],
        capture_output=True,
        text=True,
        check=True,
    )
    tps = float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"latency average = ([\d.]+) ms", result.stdout).group(1))  # type: ignore[union-attr]
    return tps, latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="alphapulse_bench")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    check_own_database(args.db)

    owner = psycopg.connect(owner_url(args.db), autocommit=True)
    original = current_shape(owner)
    owner.execute(FUNCTION)
    big = owner.execute(
        "SELECT t.id, (SELECT u.id FROM users u WHERE u.tenant_id = t.id LIMIT 1), "
        "(SELECT x.id FROM trades x WHERE x.tenant_id = t.id ORDER BY x.created_at DESC LIMIT 1 OFFSET 1000) "
        "FROM tenants t WHERE t.slug = 'bench-000'"
    ).fetchone()
    variables = {"tenant": str(big[0]), "user": str(big[1]), "trade": str(big[2])}

    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    plans: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, statement in SCRIPTS.items():
            end = "ROLLBACK;" if name == "insert" else "COMMIT;"
            files[name] = Path(tmp) / f"{name}.sql"
            files[name].write_text(f"BEGIN;\nSET LOCAL app.current_tenant_id = ':tenant';\n{statement}\n{end}\n")
        try:
            for round_no in range(args.rounds):
                # Rotate the order each round: no shape always runs first (cold) or last.
                order = list(SHAPES)[round_no % 3 :] + list(SHAPES)[: round_no % 3]
                for shape in order:
                    set_shape(owner, shape)
                    for name in SCRIPTS:
                        results.setdefault((shape, name), []).append(
                            pgbench(app_url(args.db), files[name], DURATION[name], variables)
                        )
            for shape in SHAPES:
                set_shape(owner, shape)
                with psycopg.connect(app_url(args.db)) as app, app.transaction():
                    app.execute(sql.SQL("SET LOCAL app.current_tenant_id = {}").format(sql.Literal(variables["tenant"])))
                    rows = app.execute(
                        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) "
                        "SELECT count(*) FROM trades WHERE price > 100",
                    ).fetchall()
                plans[shape] = "\n".join(row[0] for row in rows)
        finally:
            set_shape(owner, original)
            owner.close()

    print(f"database {args.db}, tenant bench-000, {args.rounds} interleaved rounds, pgbench -c 1")
    print(f"{'query':<10} {'shape':<10} {'tps (median)':>13} {'mean ms':>9} {'tps / subselect':>17}")
    middle = args.rounds // 2
    for name in SCRIPTS:
        base = results[("subselect", name)]
        for shape in SHAPES:
            runs = results[(shape, name)]
            tps = sorted(t for t, _ in runs)[middle]
            latency = sorted(lat for _, lat in runs)[middle]
            ratio = sorted(t / b for (t, _), (b, _) in zip(runs, base, strict=True))[middle]
            print(f"{name:<10} {shape:<10} {tps:>13.1f} {latency:>9.3f} {ratio:>17.2f}")
    for shape, plan in plans.items():
        print(f"\n-- rowfilter plan, {shape}\n{plan}")


if __name__ == "__main__":
    main()
