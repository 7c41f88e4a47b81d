"""Drills: the seed's rollback scenarios 1 and 2 on a live server under load.

(1) `rls_bypass on` / `off` while clients of three tenants read and write:
    service continues, /health says `bypassed` then `enforced`, and the
    tenant-scoped ORM keeps every response to its own tenant meanwhile.
(2) us004 undone on a live server as the runbook says (`rls_policies off`:
    policies dropped, RLS off, schema and privileges kept) and put back
    (`rls_policies on`) with live data and traffic: the same guarantees, and
    each step's time printed. Not `migrate tenants 0007`: that also unapplies
    the later migrations that depend on us004 (the roles, the app role's
    least privilege), which the running app needs; the runbook keeps
    `migrate` backwards for undoing the schema, with the app stopped.
Scenario 3 (restore the pre-migration backup, migrate forward) runs in
`make test`: tests/tenants/test_backup_restore.py.
Both run on the drills' own cluster: the bypass is a cluster-wide role grant.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.drills.server_metrics import scrape, success_metrics
from tests.support.drills import report
from tests.support.load import LoadResult, run_load
from tests.support.scratch import manage

pytestmark = pytest.mark.drill


def under_load(server, seconds: float, steps: Callable[[float], dict]) -> tuple[LoadResult, dict]:
    """The drill's steps under load; the figures end with the success metrics from /metrics."""
    outcome: dict[str, LoadResult] = {}
    scraped_before = scrape(server.base)
    load = threading.Thread(
        target=lambda: outcome.setdefault("load", run_load(server.base, server.clients(6), seconds=seconds))
    )
    started = time.monotonic()
    load.start()
    figures = steps(started)
    load.join()
    figures["success metrics (/metrics)"] = success_metrics(scraped_before, scrape(server.base))
    return outcome["load"], figures


def wait_for_health(base: str, rls: str, since: float) -> float:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if httpx.get(f"{base}/health", timeout=5).json().get("rls") == rls:
            return time.monotonic() - since
        time.sleep(0.05)
    pytest.fail(f"/health never reported rls={rls}")


def assert_service_held(result: LoadResult) -> None:
    assert not result.leaks(), result.leaks()[:5]
    assert result.statuses().keys() <= {200, 201}, result.statuses()
    assert len(result.hits) > 100


def test_scenario_1_bypass_on_and_off_under_load(own_cluster, own_cluster_server):
    server = own_cluster_server
    assert httpx.get(f"{server.base}/health").json()["rls"] == "enforced"

    def steps(started: float) -> dict:
        time.sleep(2)
        t0 = time.monotonic()
        manage("unused", "rls_bypass", "on", "--yes", **own_cluster.env)  # a fresh manage.py: ~2 s of start-up
        bypassed_after = wait_for_health(server.base, "bypassed", t0)
        time.sleep(4)
        t1 = time.monotonic()
        manage("unused", "rls_bypass", "off", **own_cluster.env)
        enforced_after = wait_for_health(server.base, "enforced", t1)
        return {
            "rls_bypass on (command start) -> /health bypassed": f"{bypassed_after:.2f} s",
            "rls_bypass off (command start) -> /health enforced": f"{enforced_after:.2f} s",
        }

    result, figures = under_load(server, 10, steps)
    report("rollback scenario 1: RLS bypass on a live server", load=result.summary(), **figures)
    assert_service_held(result)


def test_scenario_2_us004_undone_and_put_back_under_load(own_cluster, own_cluster_server):
    server = own_cluster_server

    def steps(started: float) -> dict:
        time.sleep(2)
        t0 = time.monotonic()
        off = manage("unused", "rls_policies", "off", "--reason", "drill", **own_cluster.env)
        undone = time.monotonic() - t0
        assert off.returncode == 0, off.stderr
        health_down = httpx.get(f"{server.base}/health").json()["rls"]
        time.sleep(3)
        t1 = time.monotonic()
        on = manage("unused", "rls_policies", "on", "--reason", "drill over", **own_cluster.env)
        put_back = time.monotonic() - t1
        assert on.returncode == 0, on.stderr
        health_up = httpx.get(f"{server.base}/health").json()["rls"]
        return {
            "us004 undone (rls_policies off)": f"{undone:.2f} s, then /health rls={health_down}",
            "us004 put back (rls_policies on)": f"{put_back:.2f} s, then /health rls={health_up}",
        }

    result, figures = under_load(server, 12, steps)
    report("rollback scenario 2: us004 undone and put back under load", load=result.summary(), **figures)
    assert_service_held(result)
    assert "rls=bypassed" in figures["us004 undone (rls_policies off)"]
    assert "rls=enforced" in figures["us004 put back (rls_policies on)"]
    check = manage("unused", "rls_check", **own_cluster.env)
    assert check.returncode == 0
