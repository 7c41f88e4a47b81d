"""What RLS costs inside PostgreSQL, statement by statement: planning and execution, ON vs OFF.

    PYTHONPATH=scripts python -m bench.statement_cost [--db alphapulse_bench] [--requests 400]

Copies the bench database twice (RLS on; RLS off as `make bench`'s OFF twin), sends the
same in-process detail and list requests to each (Django's test client), and reads
pg_stat_statements with `track_planning` on (set for the run with ALTER SYSTEM as the
cluster superuser, then reset): microseconds of planning and of execution per call of
every statement the requests ran. The local cluster of `make db-up` only. Prints a
Markdown table; exit 0, or 1 with one line when pg_stat_statements is not loaded.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import psycopg

import devdb
from bench.common import owner_url
from bench.harness import create_twin, switch_rls_off

REQUESTS = r"""
import os, sys, tempfile
sys.path[:0] = ["scripts", os.getcwd()]
from bench.common import db_env
db, rls, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.environ.update(db_env(db, DJANGO_SETTINGS_MODULE="alphapulse.settings", DEBUG="false", RLS_ENABLED=rls))
os.environ["TENANT_RATE_LIMITS"] = ",".join(f"{t}=100000000/min" for t in ("free", "starter", "pro", "enterprise"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()
import django
django.setup()
from django.test import Client
from tenants.context import tenant_context
from tenants.http.auth import tokens_for
from tenants.models import Tenant, User
from trading.models import Trade
tenant = Tenant.objects.get(slug="bench-000")
with tenant_context(tenant):
    user = User.objects.get(username="trader-0000")
    trade = Trade.objects.order_by("-created_at").values_list("id", flat=True)[10]
client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access']}")
for _ in range(count):
    assert client.get(f"/api/trades/{trade}/").status_code == 200
    assert client.get("/api/trades/?page_size=50").status_code == 200
"""

STATEMENTS = (
    "SELECT s.queryid, s.calls, s.total_plan_time, s.total_exec_time, regexp_replace(s.query, '\\s+', ' ', 'g') "
    "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
    "WHERE d.datname = current_database() AND s.query NOT LIKE '%pg_stat_statements%' "
    "ORDER BY s.total_plan_time + s.total_exec_time DESC"
)


def superuser_sql(db: str, query: str) -> str:
    done = subprocess.run(
        ["scripts/db.sh", "psql", "-d", db, "-AtF", "\t", "-c", query], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"statement_cost: {done.stderr.strip().splitlines()[-1] if done.stderr else 'psql failed'}")
    return done.stdout


def requests(db: str, rls: bool, count: int) -> None:
    subprocess.run([sys.executable, "-c", REQUESTS, db, "true" if rls else "false", str(count)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get("BENCH_DB", "alphapulse_bench"))
    parser.add_argument("--requests", type=int, default=400, help="detail + list pairs per variant")
    args = parser.parse_args()
    if "pg_stat_statements" not in superuser_sql("postgres", "SHOW shared_preload_libraries"):
        print("statement_cost: pg_stat_statements is not loaded on this cluster", file=sys.stderr)
        raise SystemExit(1)
    copies = {"on": f"{args.db}_stmt_on", "off": f"{args.db}_stmt_off"}
    for copy in copies.values():
        create_twin(args.db, copy)
    switch_rls_off(copies["off"])
    superuser_sql("postgres", "ALTER SYSTEM SET pg_stat_statements.track_planning = on")
    superuser_sql("postgres", "SELECT pg_reload_conf()")
    measured: dict[str, dict[str, tuple[float, float]]] = {}
    try:
        for variant, copy in copies.items():
            requests(copy, variant == "on", 20)  # warm: connections, caches
            superuser_sql(copy, "SELECT pg_stat_statements_reset()")
            requests(copy, variant == "on", args.requests)
            measured[variant] = {}
            for line in superuser_sql(copy, STATEMENTS).splitlines():
                _, calls, plan, execute, text = line.split("\t", 4)
                if int(calls) >= args.requests:  # the requests' own statements, not the set-up's
                    measured[variant][text] = (float(plan) / int(calls) * 1000, float(execute) / int(calls) * 1000)
    finally:
        superuser_sql("postgres", "ALTER SYSTEM RESET pg_stat_statements.track_planning")
        superuser_sql("postgres", "SELECT pg_reload_conf()")
        with psycopg.connect(owner_url("postgres"), autocommit=True) as admin:
            for copy in copies.values():
                devdb.drop_database(admin, copy)
    print(f"microseconds per call, {args.requests} detail + list requests per variant, db {args.db}\n")
    print("| statement | ON plan | ON execute | OFF plan | OFF execute |")
    print("|---|---|---|---|---|")
    for text, (plan, execute) in measured["on"].items():
        off = measured["off"].get(text)
        cells = f"{off[0]:.0f} | {off[1]:.0f}" if off else "- | -"
        shown = text if len(text) <= 100 else f"{text[:60]} ... {text[-35:]}"
        print(f"| `{shown}` | {plan:.0f} | {execute:.0f} | {cells} |")


if __name__ == "__main__":
    main()
