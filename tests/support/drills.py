"""What the drills share: the demo users, the drill server's settings, its tenants' tokens, the report."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import psycopg

from tests.drills.server_metrics import DRILL_METRICS_TOKEN
from tests.support.load import login
from tests.support.scratch import DEMO_PASSWORD, FAST_HASHER, ROOT

DEMO_USERS = {"acme": "alice", "globex": "bob", "initech": "carol"}
FAST = {
    **FAST_HASHER,
    # The drills push single tenants far beyond their tier's rate.
    "TENANT_RATE_LIMITS": "free=none,starter=none,pro=none,enterprise=none",
    "LOG_LEVEL": "ERROR",
    # /metrics for the success metrics (tests/drills/server_metrics.py); no per-request log lines.
    "METRICS_TOKEN": DRILL_METRICS_TOKEN,
    "REQUEST_LOG": "false",
}


@dataclass
class DemoServer:
    base: str
    tenant_ids: dict[str, str]
    headers: dict[str, dict[str, str]]

    def clients(self, count: int) -> list[tuple[str, str, dict[str, str]]]:
        slugs = list(DEMO_USERS)
        return [(s, self.tenant_ids[s], self.headers[s]) for s in (slugs[i % len(slugs)] for i in range(count))]


def demo_server_on(base: str, owner: psycopg.Connection) -> DemoServer:
    tenant_ids = dict(owner.execute("SELECT slug, id::text FROM tenants").fetchall())
    headers = {slug: login(base, slug, user, DEMO_PASSWORD) for slug, user in DEMO_USERS.items()}
    return DemoServer(base, tenant_ids, headers)


def report(title: str, **figures: object) -> None:
    """Printed figures of a drill (run with -s, as `make drills` does)."""
    print(f"\n[drill] {title}")
    for name, value in figures.items():
        print(f"    {name.replace('_', ' ')}: {value}")


def pitr_script(env: dict[str, str], script: str, *args: str, **extra: str) -> subprocess.CompletedProcess:
    """scripts/<script> (pitr.sh, tenant-pitr.sh) with a drill cluster's environment; fails on a non-zero exit."""
    result = subprocess.run(
        ["bash", f"scripts/{script}", *args],
        cwd=ROOT,
        env={**os.environ, **env, **extra},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{script} {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result
