"""Which shape of the tenant policy to use on both backends, measured on the single node.

    PYTHONPATH=scripts .venv/bin/python -m bench.policy_shapes --db alphapulse_bench

On the bench database (`make bench-data`: 1M trades, the biggest tenant
`bench-000` holds half of them) this copies `trades` three times, each copy
with the same indexes, forced RLS and the seed's policies, but its own shape
of "the current tenant":

- subselect: `(SELECT NULLIF(current_setting(...), '')::uuid)` (an InitPlan;
  Citus refuses it on distributed tables);
- inline:    `NULLIF(current_setting(...), '')::uuid`;
- function:  `bench_current_tenant_id()`, a `LANGUAGE sql STABLE` function
  around the inline expression.

Then one pgbench run per query, as the app role, with the three shapes' scripts
in the same run (`-f a@1 -f b@1 -f c@1`): pgbench picks one at random for every
transaction, so load from anything else on the machine hits all three alike.
Each transaction is `BEGIN; SET LOCAL app.current_tenant_id = ...; <query>;
COMMIT` for the big tenant:

- list: the API's first page (explicit `tenant_id =`, newest first, 51 rows);
- detail: by tenant and id;
- insert: one row, rolled back so the copies do not grow;
- rowfilter: `count(*) WHERE price > 100` with no explicit tenant filter, so
  the policy alone selects the tenant's 500k rows (`>` on numeric is not
  LEAKPROOF: it runs after the policy).

It prints per shape the transactions, mean latency and its ratio to the
subselect, and the rowfilter plans. The copies are dropped at the end.
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
# `{table}` is one shape's copy; ':tenant' etc. are pgbench variables (-D).
# Text of pgbench script files, never executed from Python (hence the noqa).
QUERIES = {
    "list": f"SELECT {COLUMNS} FROM {{table}} WHERE tenant_id = ':tenant' ORDER BY created_at DESC, id DESC LIMIT 51;",  # noqa: S608
    "detail": f"SELECT {COLUMNS} FROM {{table}} WHERE tenant_id = ':tenant' AND id = ':trade' LIMIT 21;",  # noqa: S608
    "insert": (
        f"INSERT INTO {{table}} ({COLUMNS}) VALUES (gen_random_uuid(), ':tenant', ':user', 'AAPL', 'buy', 1, 1, "  # noqa: S608
        "now(), now());"
    ),
    "rowfilter": "SELECT count(*) FROM {table} WHERE price > 100;",
}


def copy_table(shape: str) -> str:
    return f"bench_trades_{shape}"


def build_copies(owner: psycopg.Connection, app_role: str) -> None:
    owner.execute(FUNCTION)
    for shape, tenant in SHAPES.items():
        t = sql.Identifier(copy_table(shape))
        with owner.transaction():
            owner.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(t))
            owner.execute(sql.SQL("CREATE TABLE {} (LIKE trades INCLUDING ALL)").format(t))
            # The owner holds the bypass, so it reads every row of trades.
            owner.execute(sql.SQL("INSERT INTO {} SELECT * FROM trades ORDER BY created_at").format(t))
            owner.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(t))
            owner.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(t))
            owner.execute(
                sql.SQL(
                    "CREATE POLICY tenant_isolation_policy ON {t} USING (tenant_id = {x}) WITH CHECK (tenant_id = {x})"
                ).format(t=t, x=tenant)
            )
            owner.execute(
                sql.SQL("CREATE POLICY tenant_insert_policy ON {} FOR INSERT WITH CHECK (tenant_id = {})").format(
                    t, tenant
                )
            )
            owner.execute(sql.SQL("CREATE POLICY tenant_bypass_policy ON {} TO rls_bypass_role USING (true)").format(t))
            owner.execute(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(t, sql.Identifier(app_role)))
        owner.execute(sql.SQL("VACUUM (ANALYZE) {}").format(t))


def drop_copies(owner: psycopg.Connection) -> None:
    for shape in SHAPES:
        owner.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(copy_table(shape))))
    owner.execute("DROP FUNCTION IF EXISTS public.bench_current_tenant_id()")


def pgbench(url: str, scripts: list[Path], seconds: int, variables: dict[str, str]) -> list[tuple[int, float]]:
    """(transactions, mean latency ms) per script, in the order given."""
    defines = [arg for name, value in variables.items() for arg in ("-D", f"{name}={value}")]
    files = [arg for script in scripts for arg in ("-f", f"{script}@1")]
    result = subprocess.run(
        ["pgbench", "-n", "-c", "1", "-T", str(seconds), *files, *defines, url],
        capture_output=True,
        text=True,
        check=True,
    )
    per_script = re.findall(
        r"SQL script \d+: [^\n]*\n - weight: [^\n]*\n - (\d+) transactions.*?latency average = ([\d.]+) ms",
        result.stdout,
        re.S,
    )
    if len(per_script) != len(scripts):
        raise SystemExit(f"could not read pgbench's per-script figures:\n{result.stdout}")
    return [(int(count), float(latency)) for count, latency in per_script]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="alphapulse_bench")
    parser.add_argument("--seconds", type=int, default=30, help="pgbench duration per query")
    parser.add_argument("--keep", action="store_true", help="keep the three copies of trades")
    args = parser.parse_args()
    check_own_database(args.db)

    with psycopg.connect(app_url(args.db)) as app:
        app_role = app.info.user
    owner = psycopg.connect(owner_url(args.db), autocommit=True)
    big = owner.execute(
        "SELECT t.id, (SELECT u.id FROM users u WHERE u.tenant_id = t.id LIMIT 1), "
        "(SELECT x.id FROM trades x WHERE x.tenant_id = t.id ORDER BY x.created_at DESC LIMIT 1 OFFSET 1000) "
        "FROM tenants t WHERE t.slug = 'bench-000'"
    ).fetchone()
    assert big is not None, "no tenant bench-000: run make bench-data first"
    variables = {"tenant": str(big[0]), "user": str(big[1]), "trade": str(big[2])}

    results: dict[str, list[tuple[int, float]]] = {}
    plans: dict[str, str] = {}
    try:
        print("building three copies of trades (one per policy shape) ...", flush=True)
        build_copies(owner, app_role)
        with tempfile.TemporaryDirectory() as tmp:
            for name, query in QUERIES.items():
                scripts = []
                for shape in SHAPES:
                    end = "ROLLBACK;" if name == "insert" else "COMMIT;"
                    body = query.format(table=copy_table(shape))
                    script = Path(tmp) / f"{name}_{shape}.sql"
                    script.write_text(f"BEGIN;\nSET LOCAL app.current_tenant_id = ':tenant';\n{body}\n{end}\n")
                    scripts.append(script)
                results[name] = pgbench(app_url(args.db), scripts, args.seconds, variables)
        with psycopg.connect(app_url(args.db)) as app, app.transaction():
            app.execute(sql.SQL("SET LOCAL app.current_tenant_id = {}").format(sql.Literal(variables["tenant"])))
            for shape in SHAPES:
                explain = sql.SQL(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT count(*) FROM {} WHERE price > 100"
                ).format(sql.Identifier(copy_table(shape)))
                plans[shape] = "\n".join(row[0] for row in app.execute(explain).fetchall())
    finally:
        if not args.keep:
            drop_copies(owner)
        owner.close()

    print(f"database {args.db}, tenant bench-000, pgbench -c 1 -T {args.seconds}, the three shapes in one run")
    print(f"{'query':<10} {'shape':<10} {'transactions':>12} {'mean ms':>9} {'ms / subselect':>15}")
    for name in QUERIES:
        base = results[name][0][1]
        for shape, (count, latency) in zip(SHAPES, results[name], strict=True):
            print(f"{name:<10} {shape:<10} {count:>12} {latency:>9.3f} {latency / base:>15.2f}")
    for shape, plan in plans.items():
        print(f"\n-- rowfilter plan, {shape}\n{plan}")


if __name__ == "__main__":
    main()
