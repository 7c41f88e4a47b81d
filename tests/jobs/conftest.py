"""Real parts for the job tests: a committed scratch database with demo data,
the project's Redis, and Celery worker PROCESSES (`celery -A alphapulse
worker`) connected as the app role, on a queue of this test session's own.

The worker cannot see the test's own transaction, so everything it reads is
committed in the scratch database (`load_demo`: acme, globex, initech).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from alphapulse.celery import app as celery_app
from tests.support.scratch import FAST_HASHER, ROOT, connect, db_env, demo_database

CELERY = Path(sys.executable).with_name("celery")
# This session's queue: a `make run` worker on the same Redis never takes these tasks.
QUEUE = f"alphapulse-test-{uuid.uuid4().hex[:8]}"
WORKER_ENV = {
    "CELERY_QUEUE": QUEUE,
    # A killed worker's task is handed out again after 2 s (the default is an hour).
    "CELERY_VISIBILITY_TIMEOUT": "2",
    "CELERY_RESTORE_INTERVAL": "1",
    "CELERY_RESTORE_THROTTLE": "1",
    "LOG_LEVEL": "WARNING",
}


@pytest.fixture(scope="session", autouse=True)
def session_queue():
    """The test process sends to this session's queue (the app is configured lazily)."""
    celery_app.conf.task_default_queue = QUEUE
    route = celery_app.amqp.router.route({}, "jobs.portfolio_snapshot")
    assert route["queue"].name == QUEUE, route
    yield QUEUE


@dataclass
class Worker:
    process: subprocess.Popen
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): nothing is acknowledged."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(dbname: str, *, concurrency: int = 1, name: str = "w", **env: str) -> Worker:
    log_path = Path(tempfile.mkstemp(prefix=f"celery-{name}-", suffix=".log")[1])
    process = subprocess.Popen(
        [
            str(CELERY),
            "-A",
            "alphapulse",
            "worker",
            "--include",
            "tests.jobs.probes",
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "--hostname",
            f"{name}-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=db_env(dbname, **{**WORKER_ENV, **FAST_HASHER, **env}),
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so kill() reaches the pool children
    )
    worker = Worker(process, log_path)
    deadline = time.monotonic() + 60
    while "ready." not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            pytest.fail(f"celery worker did not start:\n{worker.log()[-3000:]}")
        time.sleep(0.2)
    return worker


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
