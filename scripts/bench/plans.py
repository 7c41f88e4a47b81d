"""EXPLAIN (ANALYZE, BUFFERS) of the list, filtered list and detail queries, as the
app role under RLS, for the big tenant and a small one -> docs/benchmarks/plans.md.

Run by bench.threeway with DATABASE_URL pointing at the bench database:
`PYTHONPATH=scripts .venv/bin/python -m bench.plans [--big SLUG] [--small SLUG] [--out FILE]`.
The querysets come from trading.query_shapes, i.e. the viewsets' own code
path; each plan is the second of two runs (the first warms the cache).
Plans carry row estimates that describe other tenants' data: they belong in
the repository's docs, never in a response to a tenant (docs/design.md).

`--json FILE` (bench.scale) writes the same plans as JSON, with the filtered list for a
symbol no tenant holds, and `--generic`: what a server-side prepared statement would do
(the app prepares none: prepare_threshold is None, so every statement is an unnamed one,
planned afresh with its values). Each query is PREPAREd, then (a) EXPLAIN (ANALYZE,
BUFFERS) EXECUTE under plan_cache_mode = force_generic_plan: the generic plan, made without
the tenant's value; (b) under the default plan_cache_mode (auto), EXECUTEd 12 times, the
big and the small tenant in turn, and pg_prepared_statements' count of generic and custom
plans read: whether PostgreSQL would switch to the generic plan on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django

AUTO_ROUNDS = 12
TIMED_OUT = "canceled by the app role's statement_timeout"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", default="bench-000")
    parser.add_argument("--small", default="bench-099")
    parser.add_argument("--symbol", default="AAPL")
    parser.add_argument("--side", default="buy")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/plans.md"))
    parser.add_argument("--json", type=Path, default=None, help="write JSON here instead of Markdown to --out")
    parser.add_argument("--generic", action="store_true", help="with --json: the generic plans too")
    return parser.parse_args()


def queries(args: argparse.Namespace, *, absent: bool) -> list[tuple[str, str, Any]]:
    """(key, title, queryset) of the queries the API runs, for the tenant in context."""
    from bench.harness import ABSENT_SYMBOL
    from trading.query_shapes import detail_queryset, list_queryset
    from trading.views import TradeViewSet

    first_page = list(list_queryset(TradeViewSet, {"page_size": 50}))
    detail_id = first_page[len(first_page) // 2].pk
    out = [
        ("list", "list: `GET /api/trades/?page_size=50`", list_queryset(TradeViewSet, {"page_size": 50})),
        (
            "filtered",
            f"filtered list: `GET /api/trades/?symbol={args.symbol}&side={args.side}`",
            list_queryset(TradeViewSet, {"symbol": args.symbol, "side": args.side}),
        ),
    ]
    if absent:
        out.append(
            (
                "absent",
                f"filtered list, a symbol the tenant does not hold: `GET /api/trades/?symbol={ABSENT_SYMBOL}`",
                list_queryset(TradeViewSet, {"symbol": ABSENT_SYMBOL}),
            )
        )
    out.append(("detail", f"detail: `GET /api/trades/{detail_id}/`", detail_queryset(TradeViewSet, detail_id)))
    return out


def session_line() -> str:
    from django.db import connection

    from tenants.constants import TENANT_SETTING

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, current_setting(%s, true), current_setting('row_security')", [TENANT_SETTING]
        )
        role, setting, row_security = cursor.fetchone()
    return (
        f"Session: `current_user` = `{role}`, `app.current_tenant_id` = `{setting}`, `row_security` = `{row_security}`."
    )


def guarded(run: Callable[..., str], *args: Any) -> str | None:
    """run() in a savepoint; None when the app role's statement_timeout cancelled it (the query then
    costs more than any request may: that is the finding, not an error of the tool)."""
    import psycopg
    from django.db import transaction
    from django.db.utils import OperationalError

    try:
        with transaction.atomic():
            return run(*args)
    except (psycopg.errors.QueryCanceled, OperationalError) as exc:
        if not isinstance(exc, psycopg.errors.QueryCanceled) and not isinstance(
            exc.__cause__, psycopg.errors.QueryCanceled
        ):
            raise
        return None


def timed_out() -> str:
    timeout = _raw().execute("SHOW statement_timeout").fetchone()
    return f"{TIMED_OUT} ({timeout[0] if timeout else '?'}): the plan without ANALYZE"


def analyzed_twice(queryset) -> str:
    """The second of two EXPLAIN ANALYZE runs (the first warms the cache)."""
    queryset.explain(analyze=True, buffers=True)
    return queryset.explain(analyze=True, buffers=True)


def explain(queryset) -> str:
    analyzed = guarded(analyzed_twice, queryset)
    return analyzed if analyzed is not None else f"{timed_out()}\n{queryset.explain()}"


def shown_sql(queryset) -> str:
    from django.db import connection

    statement, params = queryset.query.sql_with_params()
    return connection.ops.compose_sql(statement, params)


def markdown(args: argparse.Namespace) -> None:
    from tenants.context import tenant_context
    from tenants.models import Tenant
    from trading.models import Trade

    lines = [
        "# Query plans under RLS",
        "",
        "Generated by `make bench` (`scripts/bench/plans.py`) on the bench database, at the ON state "
        "(all migrations, RLS forced). Each query is the one the API runs, built through the viewset "
        "(`trading/query_shapes.py`: tenant-scoped manager, filter backend, cursor paginator), executed "
        "as the app role inside `tenant_context` (`app.current_tenant_id` set transaction-locally). "
        "`EXPLAIN (ANALYZE, BUFFERS)`, second of two runs.",
        "",
    ]
    for label, slug in (("big", args.big), ("small", args.small)):
        with tenant_context(Tenant.objects.get(slug=slug)):
            lines += [f"## {label} tenant `{slug}` ({Trade.objects.count():,} trades)", "", session_line(), ""]
            for _, title, queryset in queries(args, absent=False):
                lines += [f"### {title}", "", "```sql", shown_sql(queryset), "```", ""]
                lines += ["```", explain(queryset), "```", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


# -- generic plans ---------------------------------------------------------------------


def numbered(statement: str) -> str:
    """Django's `%s` placeholders as PostgreSQL's $1, $2, ... (the compiled SQL has no other `%`)."""
    if "%%" in statement:
        raise SystemExit("the statement holds a literal %: cannot number its placeholders")
    counter = iter(range(1, statement.count("%s") + 1))
    return re.sub(r"%s", lambda _: f"${next(counter)}", statement)


def _raw():
    from django.db import connection

    connection.ensure_connection()
    return connection.connection


def query_of(args: argparse.Namespace, key: str):
    """The queryset `key` of queries(), for the tenant in context."""
    return {k: q for k, _, q in queries(args, absent=True)}[key]


def prepare(name: str, queryset) -> None:
    """PREPARE `name` AS the queryset's SQL (the ORM's compiled statement, its values left as $n)."""
    from psycopg import sql

    statement, _ = queryset.query.sql_with_params()
    _raw().execute(sql.SQL("PREPARE {} AS {}").format(sql.Identifier(name), sql.SQL(numbered(statement))))


def execute_prepared(name: str, params: list[Any], explain_options: str | None = None) -> str:
    from psycopg import sql

    statement = sql.SQL("EXECUTE {} ({})").format(sql.Identifier(name), sql.SQL(", ").join(map(sql.Literal, params)))
    if explain_options is None:
        _raw().execute(statement).fetchall()
        return ""
    rows = _raw().execute(sql.SQL("EXPLAIN ({}) ").format(sql.SQL(explain_options)) + statement).fetchall()
    return "\n".join(r[0] for r in rows)


def prepared_twice(name: str, params: list[Any]) -> str:
    execute_prepared(name, params)
    return execute_prepared(name, params, "ANALYZE, BUFFERS")


def deallocate(name: str) -> None:
    from psycopg import sql

    _raw().execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(name)))


def generic_plans(args: argparse.Namespace, tenants: dict[str, Any]) -> dict[str, Any]:
    """Per query: the forced generic plan for each tenant, and what plan_cache_mode=auto chose."""
    from tenants.context import tenant_context

    out: dict[str, Any] = {}
    keys = ("list", "filtered", "absent", "detail")
    for key in keys:
        # Each tenant's own parameters (its id, its detail row); one statement for both.
        params: dict[str, list[Any]] = {}
        name = f"scale_{key}"
        for label, tenant in tenants.items():
            with tenant_context(tenant):
                params[label] = list(query_of(args, key).query.sql_with_params()[1])
        entry: dict[str, Any] = {"forced": {}}
        for label, tenant in tenants.items():
            with tenant_context(tenant):
                prepare(name, query_of(args, key))
                _raw().execute("SET LOCAL plan_cache_mode = force_generic_plan")
                try:
                    plan = guarded(prepared_twice, name, params[label])
                    entry["forced"][label] = plan or f"{timed_out()}\n{execute_prepared(name, params[label], 'COSTS')}"
                finally:
                    deallocate(name)
        # plan_cache_mode = auto (the default), as a named statement would be run by a client that prepares.
        with tenant_context(tenants["big"]):
            prepare(name, query_of(args, key))
        canceled = 0
        for round_ in range(AUTO_ROUNDS):
            label = ("big", "small")[round_ % 2]
            with tenant_context(tenants[label]):
                canceled += guarded(execute_prepared, name, params[label]) is None
        chosen = {}
        for label, tenant in tenants.items():
            with tenant_context(tenant):
                plan = guarded(execute_prepared, name, params[label], "ANALYZE, BUFFERS")
                chosen[label] = plan or f"{timed_out()}\n{execute_prepared(name, params[label], 'COSTS')}"
        row = (
            _raw()
            .execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = %s", [name])
            .fetchone()
        )
        deallocate(name)
        entry["auto"] = {
            "executions": AUTO_ROUNDS + 2,
            "generic_plans": row[0],
            "custom_plans": row[1],
            "canceled": canceled,
            "plans": chosen,
        }
        out[key] = entry
    return out


def as_json(args: argparse.Namespace) -> None:
    from tenants.context import tenant_context
    from tenants.models import Tenant
    from trading.models import Trade

    tenants = {"big": Tenant.objects.get(slug=args.big), "small": Tenant.objects.get(slug=args.small)}
    result: dict[str, Any] = {"tenants": {}}
    for label, tenant in tenants.items():
        with tenant_context(tenant):
            entry: dict[str, Any] = {"slug": tenant.slug, "trades": Trade.objects.count(), "session": session_line()}
            entry["queries"] = {
                key: {"title": title, "sql": shown_sql(qs), "plan": explain(qs)}
                for key, title, qs in queries(args, absent=True)
            }
        result["tenants"][label] = entry
    if args.generic:
        result["generic"] = generic_plans(args, {label: t.id for label, t in tenants.items()})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")


def main() -> None:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alphapulse.settings")
    django.setup()
    if args.json:
        as_json(args)
    else:
        markdown(args)


if __name__ == "__main__":
    main()
