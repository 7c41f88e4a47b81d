"""acks_late with a real worker that dies: SIGKILL in the middle of a job.

A module of its own, so no other worker is consuming: the doomed worker is
the only one that can take the job.
"""

from __future__ import annotations

import time

import pytest
from celery.exceptions import TimeoutError as CeleryTimeout

from jobs.tasks import portfolio_snapshot
from tenants.context import tenant_context
from tests.jobs.test_worker import WAIT, snapshots_at

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def wait_for_blocked_insert(jobs_db, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with jobs_db.owner() as owner:
        while time.monotonic() < deadline:
            # pg_locks, not pg_stat_activity: the owner may not read another role's query text.
            waiting = owner.execute(
                "SELECT count(*) FROM pg_locks WHERE relation = 'portfolio_snapshots'::regclass AND NOT granted"
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.05)
    pytest.fail("the job's INSERT never waited on the lock")


def test_a_job_of_a_killed_worker_runs_again_elsewhere_without_duplicate_snapshots(jobs_db, worker_factory):
    """acks_late: the worker is SIGKILLed (main process and child) while its job
    waits on a lock the test holds; nothing was acknowledged, so Redis hands the
    message to the next worker, which writes each user's snapshot exactly once."""
    as_of = "2026-11-27T06:00:00+00:00"
    globex = jobs_db.tenant_ids["globex"]
    doomed = worker_factory(name="doomed")
    with jobs_db.owner() as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE portfolio_snapshots IN SHARE MODE")  # the job's INSERT waits here
        with tenant_context(globex):
            result = portfolio_snapshot.delay(as_of)
        wait_for_blocked_insert(jobs_db)
        doomed.kill()
        blocker.execute("ROLLBACK")
    assert snapshots_at(jobs_db, as_of) == []  # the killed run committed nothing
    with pytest.raises(CeleryTimeout):
        result.get(timeout=1)  # and nobody has finished it
    worker_factory(name="rescuer")
    outcome = result.get(timeout=WAIT)
    assert outcome["created"] == len(jobs_db.user_ids["globex"])
    assert snapshots_at(jobs_db, as_of) == sorted((globex, u, 1) for u in jobs_db.user_ids["globex"])
