"""Celery worker PROCESSES for the tests (`celery -A alphapulse worker`), connected as the app role,
on a queue of this test session's own, and the fixture that sends the test process's tasks there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from alphapulse.celery import app as celery_app
from tests.support.scratch import FAST_HASHER, ROOT, db_env

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
