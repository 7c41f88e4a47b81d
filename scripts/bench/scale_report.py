"""docs/benchmarks/scale.md from bench.scale's figures (bench/out/scale.json).

The tables and plan summaries are computed from the figures; the prose that explains them
is the template's (FINDINGS), written against the figures of the committed report. A run
whose plans no longer match a finding's claim shows it: the plan summary table sits next to it.
"""

from __future__ import annotations

import json
import re
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.common import machine

SCENARIOS = ("list", "filtered", "absent", "detail", "create", "update")
TITLES = {
    "list": "list `GET /api/trades/?page_size=50`",
    "filtered": "filtered `?symbol=S&side=buy`",
    "absent": "filtered, symbol not held `?symbol=ZZ-NONE`",
    "detail": "detail `GET /api/trades/<id>/`",
    "create": "create `POST /api/trades/`",
    "update": "update `PATCH /api/trades/<id>/`",
}
PLAN_QUERIES = ("list", "filtered", "absent", "detail")
BEFORE = "scale-before.json"

FINDINGS = """\
## What grows, and what was fixed

Figures of the committed report (measured 2026-12-04); the tables above are the run's own.

- **Plans that do not change.** The list walks `idx_trades_tenant_created` for one page (52
  rows read, 0.1 ms) and the detail probes `trades_pkey` and checks the tenant on that one row
  (1 row), for the smallest tenant and the whale, at 100, 1,000 and 10,000 tenants and at 10M
  trades. The RLS policy costs no row-by-row filter: the planner folds it with the view's
  `tenant_id = <uuid>` into one index condition and a one-time filter on the setting.
- **Where a plan changed, and grew: the filtered list (fixed by `trading/0010`).** No index held
  `symbol`. The small tenant's filtered page read all of its rows through `idx_trades_tenant_id`
  and sorted them (cheap while the tenant is small); the whale's walked its rows newest first and
  filtered (about 3,000 rows per page for a symbol and a side). For a symbol the whale does not
  trade (`ZZ-NONE`: no match) the planner's estimate of one row made it scan the whole table in
  parallel, every tenant's rows: 99-110 ms of execution at 1M trades whatever the number of
  tenants, 774 ms at 10M, and through the API a whale p50 of 175-193 ms at 1M and 1,617 ms at
  10M. With `idx_trades_tenant_symbol (tenant_id, symbol, created_at DESC)` a page by symbol is
  one index range for both tenants at every size: 0 rows read for the absent symbol, about 100 for
  a symbol and a side, and the whale's p50 on the absent symbol is 15-29 ms at every size.
- **What grew on writes: a trade's amendment (fixed by `trading/0010`).** A PATCH recomputes the
  position from the trades of that (user, symbol) (`trading/positions.py`). The only index with
  the user was `user_id` alone: every trade of the user was read and filtered by symbol, 30 times
  the rows needed, so the whale's PATCH grew with its users' histories (p50 34 ms at 1M, 77 ms at
  10M, the small tenant 32 ms). `idx_trades_tenant_user_symbol (tenant_id, user_id, symbol,
  created_at)` reads that key's trades alone, in order: the whale's PATCH at 10M is back to 38 ms.
- **The cost of the two indexes.** Every trade written adds two index entries. Between the runs
  before and after, create and update p50 moved by several ms both ways, and so did reads the
  indexes cannot touch: the load from other work on this 2-core machine moves more than they do.
  Measured apart, interleaved on two copies with and without them ("What the two indexes cost a
  write" below, 100x1m): create WITH/WITHOUT p50 0.99 (0.92-1.03), no cost that stands out of the
  noise; update 0.93 (0.92-0.93), faster with them already at 1M (the recomputation's read).
- **Gaps that are the page, not growth.** Where the whale's list or filtered p50 sits above the
  small tenant's after the fix, the plans read the same ~50-100 rows in 0.1-0.2 ms; the difference
  is what is sent back: the whale's page holds 50 trades, the smallest tenant's holds its 5 trades
  (10,000 tenants) or the one or two that match a symbol and a side (1,000 tenants), so fewer rows
  to serialize. It does not grow from 1M to 10M.
- **Number of tenants.** 100, 1,000 or 10,000 tenants sharing the same rows change the smallest
  tenant's size (975, 66 and 5 trades) and the planner's estimates, not the plans' shapes and not
  the latency: nothing in the API is kept per tenant (no per-tenant cache, pool or prepared
  statement), so the number of tenants has no other cost here.
- **Generic plans.** The app prepares nothing: `prepare_threshold` is `None` (settings), so
  psycopg sends every statement as the unnamed one with its values bound (server-side binding)
  and PostgreSQL plans it with those values each time: a custom plan (the plans below show the
  tenant's uuid as a constant). No generic plan is ever used by the API. A client that did prepare
  (psycopg's default `prepare_threshold` is 5) would let PostgreSQL switch to one generic plan,
  made for an average tenant (1/n_distinct of the rows), after five executions when it looks no
  dearer than the custom ones. Measured (table below): before the fix, the absent-symbol filter
  ran on the generic plan in 9 or 10 of its executions, and the whale's generic plan walked all of its
  index entries: 736 ms at 100x1m, cancelled by the 15 s `statement_timeout` at 10M. After the fix
  the absent-symbol plan is the same index range generic or not; but at 1,000 tenants the filtered
  list (symbol and side) still switches to a generic plan that, for the whale, reads all its rows of
  that symbol through a bitmap (53 ms instead of 0.2 ms). That is the whale's remaining trap, and
  one more reason (besides PgBouncer in transaction mode) for `prepare_threshold = None`: a change
  to it must come with this report re-run.
"""


def _v(package: str) -> str:
    try:
        return version(package)
    except Exception:
        return "?"


def execution_ms(plan: str) -> float | None:
    match = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return float(match[1]) if match else None


def access(plan: str) -> str:
    """The scans of trades in a plan, in order, as `Node using index` (e.g. `Index Scan using idx_x`)."""
    found = []
    for line in plan.splitlines():
        match = re.search(
            r"((?:Parallel )?(?:Seq Scan|Index Only Scan|Index Scan|Bitmap Index Scan|Bitmap Heap Scan))"
            r"(?: Backward)?(?: using (\S+))?(?: on (\S+))?",
            line,
        )
        if match:
            node, index = match[1], match[2] or match[3]
            found.append(f"{node} {index}" if index else node)
    return " > ".join(found) or "?"


def rows_read(plan: str) -> int:
    """Rows the scans of the table returned plus those their filters removed; EXPLAIN ANALYZE shows
    both per loop, so each is multiplied by its node's loops (bitmap index entries are not counted:
    the heap scan above them returns and removes the same rows)."""
    total, loops = 0, 1
    for line in plan.splitlines():
        if "Bitmap Index Scan" in line:
            loops = 0
            continue
        node = re.search(r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan).*rows=(\d+) loops=(\d+)", line)
        if node:
            loops = int(node[3])
            total += int(node[2]) * loops
            continue
        if re.search(r"Scan.*loops=", line) or "->" in line:
            loops = 0  # a node that is not a scan of the table: its filter is not a scan's
        removed = re.search(r"Rows Removed by Filter: (\d+)", line)
        if removed:
            total += int(removed[1]) * loops
    return total


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def canceled(plan: str) -> bool:
    return plan.startswith("canceled by")


def _run_ms(plan: str) -> str:
    return "canceled (statement_timeout)" if canceled(plan) else _ms(execution_ms(plan))


def latency_table(entry: dict[str, Any]) -> list[str]:
    s = entry["scenarios"]
    lines = [
        "| endpoint | small p50 | small p99 | whale p50 | whale p99 | whale/small p50 | n (small+whale) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for sc in SCENARIOS:
        if sc not in s:
            continue
        small, big = s[sc]["small"], s[sc]["big"]
        lines.append(
            f"| {TITLES[sc]} | {small['p50']:.1f} | {small['p99']:.1f} | {big['p50']:.1f} | {big['p99']:.1f} | "
            f"{big['p50'] / small['p50']:.2f} | {small['n']}+{big['n']} | {small['errors'] + big['errors']} |"
        )
    return lines


def overview(configs: dict[str, Any]) -> list[str]:
    """p50 / p99 of the whale and the small tenant per endpoint (rows) and configuration (columns)."""
    names = list(configs)
    lines = [
        "| endpoint | tenant | " + " | ".join(f"{n} p50 / p99" for n in names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    for sc in SCENARIOS:
        for label, shown in (("small", "small"), ("big", "whale")):
            cells = []
            for n in names:
                figures = configs[n]["scenarios"].get(sc, {}).get(label)
                cells.append(f"{figures['p50']:.1f} / {figures['p99']:.1f}" if figures else "-")
            lines.append(f"| {TITLES[sc]} | {shown} | " + " | ".join(cells) + " |")
    return lines


def plan_summary(configs: dict[str, Any]) -> list[str]:
    lines = [
        "| configuration | query | tenant (trades) | plan (scans of trades) | rows read | execution ms |",
        "|---|---|---|---|---:|---:|",
    ]
    for name, entry in configs.items():
        for key in PLAN_QUERIES:
            for label in ("small", "big"):
                tenant = entry["plans"]["tenants"][label]
                query = tenant["queries"].get(key)
                if not query:
                    continue
                plan = query["plan"]
                lines.append(
                    f"| {name} | {key} | {tenant['slug']} ({tenant['trades']:,}) | {access(plan)} | "
                    f"{'-' if canceled(plan) else f'{rows_read(plan):,}'} | {_run_ms(plan)} |"
                )
    return lines


def generic_table(configs: dict[str, Any]) -> list[str]:
    lines = [
        "| configuration | query | custom plan, whale ms | generic plan, whale ms | generic plan, small ms | "
        "auto: generic / custom plans of 14 | generic plan (scans) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, entry in configs.items():
        generic = entry["plans"].get("generic", {})
        for key in PLAN_QUERIES:
            g = generic.get(key)
            if not g:
                continue
            custom = entry["plans"]["tenants"]["big"]["queries"][key]["plan"]
            lines.append(
                f"| {name} | {key} | {_run_ms(custom)} | {_run_ms(g['forced']['big'])} | "
                f"{_run_ms(g['forced']['small'])} | {g['auto']['generic_plans']} / "
                f"{g['auto']['custom_plans']} | {access(g['forced']['big'])} |"
            )
    return lines


def before_section(docs: Path, configs: dict[str, Any]) -> list[str]:
    """The figures of the run before the fix (docs/benchmarks/scale-before.json), beside today's."""
    path = docs / BEFORE
    if not path.exists():
        return []
    before = json.loads(path.read_text())
    lines = [
        "## Before the fix",
        "",
        f"Measured by the same script {before.get('measured', '')} on the commit before migration `trading/0010` "
        f"(`{BEFORE}`, the figures only). Whale p50 / p99 in ms, before -> after:",
        "",
        "| configuration | endpoint | before | after | whale rows read per page, before -> after |",
        "|---|---|---:|---:|---:|",
    ]
    for name, old in before["configs"].items():
        new = configs.get(name)
        for sc in ("filtered", "absent", "create", "update"):
            o = old["scenarios"].get(sc, {}).get("big")
            if not o:
                continue
            n = new["scenarios"].get(sc, {}).get("big") if new else None
            after = f"{n['p50']:.1f} / {n['p99']:.1f}" if n else "-"
            read = ""
            if sc in old.get("rows_read", {}):
                now = rows_read(new["plans"]["tenants"]["big"]["queries"][sc]["plan"]) if new else None
                read = f"{old['rows_read'][sc]:,} -> {now:,}" if now is not None else f"{old['rows_read'][sc]:,}"
            lines.append(f"| {name} | {TITLES[sc]} | {o['p50']:.1f} / {o['p99']:.1f} | {after} | {read} |")
    return [*lines, ""]


def baseline(results: dict[str, Any]) -> dict[str, Any]:
    """The figures a later report compares with (written to docs/benchmarks/scale-before.json by hand: --baseline)."""
    return {
        "measured": time.strftime("%Y-%m-%d", time.gmtime()),
        "configs": {
            name: {
                "scenarios": {sc: {k: e["scenarios"][sc][k] for k in ("small", "big")} for sc in e["scenarios"]},
                "rows_read": {
                    key: rows_read(e["plans"]["tenants"]["big"]["queries"][key]["plan"])
                    for key in PLAN_QUERIES
                    if key in e["plans"]["tenants"]["big"]["queries"]
                },
            }
            for name, e in results["configs"].items()
        },
    }


def index_cost_section(cost: dict[str, Any] | None) -> list[str]:
    """bench.index_cost's figures: trading/0010's indexes on writes, WITH vs WITHOUT, interleaved."""
    if not cost:
        return []
    st = cost["settings"]
    lines = [
        "## What the two indexes cost a write",
        "",
        f"`PYTHONPATH=scripts .venv/bin/python -m bench.index_cost --only {cost['config']}`: two copies of the "
        f"{cost['config']} database, one WITH the indexes of `trading/0010` and one WITHOUT (dropped), two "
        "gunicorns, RLS ON; every request sent to both, one after the other, who goes first alternating; "
        f"{st['repetitions']} repetitions x {st['requests']} requests per scenario and copy (small tenant and whale "
        "in turn). Median over repetitions of each copy's p50, and of the WITH/WITHOUT ratio (min-max):",
        "",
        "| endpoint | WITH p50 ms | WITHOUT p50 ms | WITH/WITHOUT p50 |",
        "|---|---:|---:|---:|",
    ]
    for scenario, f in cost["scenarios"].items():
        lines.append(
            f"| {TITLES[scenario]} | {f['with_p50']:.1f} | {f['without_p50']:.1f} | "
            f"{f['ratio']:.3f} ({f['ratio_min']:.3f}-{f['ratio_max']:.3f}) |"
        )
    return [*lines, ""]


def plan_details(configs: dict[str, Any]) -> list[str]:
    lines = ["## The plans", ""]
    for name, entry in configs.items():
        lines += [f"### {name}", ""]
        for label in ("small", "big"):
            tenant = entry["plans"]["tenants"][label]
            who = "whale" if label == "big" else "small tenant"
            lines += [
                f"#### {who} `{tenant['slug']}` ({tenant['trades']:,} trades)",
                "",
                tenant["session"],
                "",
            ]
            for query in tenant["queries"].values():
                lines += [
                    "<details>",
                    f"<summary>{query['title']}: {access(query['plan'])}, {_run_ms(query['plan'])} ms</summary>",
                    "",
                    "```sql",
                    query["sql"],
                    "```",
                    "",
                    "```",
                    query["plan"],
                    "```",
                    "",
                    "</details>",
                    "",
                ]
    return lines


def write(results: dict[str, Any], docs: Path) -> None:
    configs = results["configs"]
    any_entry = next(iter(configs.values()))
    settings = any_entry["settings"]
    m = machine()
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "# How cost grows: tenants and rows",
        "",
        f"Generated by `make bench-scale` (`scripts/bench/scale.py`) on {now}. "
        "Raw figures: `bench/out/scale.json`. Back to [the benchmarks](README.md).",
        "",
        "## How to reproduce",
        "",
        "```bash",
        "make bench-scale                                   # every configuration (builds or reuses the databases)",
        "SCALE=100,1000 BENCH_SCALE_REQUESTS=200 make bench-scale   # a subset, fewer requests",
        "PYTHONPATH=scripts .venv/bin/python -m bench.scale --only 100x10m --rebuild",
        "PYTHONPATH=scripts .venv/bin/python -m bench.index_cost   # the write cost of trading/0010's indexes",
        "```",
        "",
        "## Set-up",
        "",
        f"- {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}, Django {_v('django')}, "
        f"gunicorn {_v('gunicorn')}; PostgreSQL 15, default settings of `make db-up`; the cores are shared with "
        "other work (figures are for comparing the configurations with each other, not absolute).",
        "- One configuration = one database built by `make bench-data`'s builder (`bench.data`): the whale "
        "`bench-000` holds half of every table, the other tenants share the rest on a Zipf curve; the small "
        "tenant measured is the last, the smallest. Other tables follow the trades (0.3 orders, 0.1 snapshots, "
        "0.1 risk metrics, 0.2 agent signals per trade); users max(1,000, 2 per tenant).",
        "- The database is kept and reused while its recorded parameters match (the comment on the database "
        "written at the end of a build); the run serves a copy of it, dropped afterwards. A first run builds the "
        "four (measured: 66 s, 168 s, 170 s and 1,026 s, the last three partly side by side), about 30 min in "
        "all; a run on kept databases takes about 6 min (`--rebuild` forces a build).",
        f"- One gunicorn, RLS ON (the product's settings), {settings['workers']} sync workers; closed loop, "
        f"{settings['concurrency']} client threads, the small tenant and the whale in turn; "
        f"{settings['requests']} requests per endpoint ({settings['absent_requests']} for the symbol not held) "
        f"after {settings['warmup']} discarded. Milliseconds, client side, new TCP connection per request.",
        "",
        "## Build",
        "",
        "| configuration | tenants | trades | users asked (>= 2 per tenant) | build (s) | reused | migrate (s) "
        "| copy (s) | measured |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for name, e in configs.items():
        c, b = e["config"], e["build"]
        lines.append(
            f"| {name} | {c['tenants']:,} | {c['trades']:,} | {c['users']:,} | {b.get('build_seconds') or '?'} | "
            f"{'yes' if b.get('reused') else 'no'} | {b.get('migrate_seconds', '-')} | {b.get('copy_seconds', '-')} | "
            f"{e['measured_at']} |"
        )
    lines += ["", "## Latency, small tenant and whale, RLS ON (ms)", "", *overview(configs), ""]
    for name, e in configs.items():
        c = e["config"]
        tenants = e["plans"]["tenants"]
        lines += [
            f"### {name}: {c['tenants']:,} tenants, {c['trades']:,} trades",
            "",
            f"Small tenant `{tenants['small']['slug']}` ({tenants['small']['trades']:,} trades), whale "
            f"`{tenants['big']['slug']}` ({tenants['big']['trades']:,} trades).",
            "",
            *latency_table(e),
            "",
        ]
    lines += [FINDINGS, *before_section(docs, configs), *index_cost_section(results.get("index_cost"))]
    lines += [
        "## Plans at a glance",
        "",
        "EXPLAIN (ANALYZE, BUFFERS) as the app role under RLS, the tenant set by `SET LOCAL` inside the "
        "transaction (`tenant_context`), second of two runs; the queries are the viewsets' own "
        "(`trading/query_shapes.py`). Rows read: what the scans of trades returned plus what their filters "
        "removed.",
        "",
        *plan_summary(configs),
        "",
        "## Generic plans",
        "",
        "Each query PREPAREd on the app's connection: its generic plan forced (`plan_cache_mode = "
        "force_generic_plan`) and run for each tenant; then, under the default `auto`, executed 14 times (whale "
        "and small in turn) and `pg_prepared_statements` read: how many executions PostgreSQL ran on the "
        "generic plan. The app itself prepares nothing (`prepare_threshold = None`).",
        "",
        *generic_table(configs),
        "",
        *plan_details(configs),
    ]
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "scale.md").write_text("\n".join(lines) + "\n")
