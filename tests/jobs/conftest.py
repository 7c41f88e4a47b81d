"""Real parts for the job tests: a committed scratch database with demo data,
the project's Redis, and Celery worker PROCESSES (`celery -A alphapulse
worker`) connected as the app role, on a queue of this test session's own.

The worker cannot see the test's own transaction, so everything it reads is
committed in the scratch database (`load_demo`: acme, globex, initech).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.scratch import connect, demo_database
from tests.support.workers import Worker, session_queue, start_worker  # noqa: F401  (session_queue: autouse fixture)


@dataclass
class JobsDatabase:
    name: str
    tenant_ids: dict[str, str]  # slug -> id
    user_ids: dict[str, set[str]]  # slug -> ids of its users

    def owner(self):
        return connect("owner", self.name)

    def set_status(self, slug: str, status: str) -> None:
        with self.owner() as owner:
            owner.execute("UPDATE tenants SET status = %s WHERE slug = %s", [status, slug])


@pytest.fixture(scope="module")
def jobs_db() -> Iterator[JobsDatabase]:
    with demo_database("alphapulse_jobs", trades=60) as name:
        with connect("owner", name) as owner:
            tenants = dict(owner.execute("SELECT slug, id::text FROM tenants").fetchall())
            users = owner.execute("SELECT tenant_id::text, id::text FROM users").fetchall()
        by_slug = {slug: {u for t, u in users if t == tid} for slug, tid in tenants.items()}
        yield JobsDatabase(name, tenants, by_slug)


@pytest.fixture(scope="module")
def worker(jobs_db) -> Iterator[Worker]:
    """One worker process, one pool child (--concurrency=1): consecutive tasks share a process."""
    running = start_worker(jobs_db.name, concurrency=1)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def worker_factory(jobs_db):
    started: list[Worker] = []

    def factory(**kwargs) -> Worker:
        started.append(start_worker(jobs_db.name, **kwargs))
        return started[-1]

    yield factory
    for running in started:
        running.stop()
