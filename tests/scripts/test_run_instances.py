"""One `make run` per checkout, one gunicorn control socket per server, and `make help` that
prints what it means (no make syntax)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
from pathlib import Path

import pytest
from django.db import connections

from tests.support.scratch import ROOT, gunicorn

RUN_LOCK = ROOT / ".run" / "make-run.lock"


def test_a_second_make_run_in_the_same_checkout_is_refused_and_touches_nothing():
    """The first instance holds the lock (here: this test); the second stops before setup,
    before emptying .metrics/ and before starting a second beat."""
    RUN_LOCK.parent.mkdir(exist_ok=True)
    metrics = ROOT / ".metrics"
    made_metrics = not metrics.exists()
    metrics.mkdir(exist_ok=True)
    marker = metrics / "i26-test-marker"
    marker.write_text("the running instance's metrics")
    with open(RUN_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        second = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env={**os.environ, "PORT": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = second.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGTERM)
            second.communicate()
            pytest.fail("a second make run was not refused: it went on to set up and serve")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    try:
        assert second.returncode != 0
        assert "this checkout is already running" in err
        assert marker.exists(), "the second make run emptied .metrics/ under the first"
    finally:
        marker.unlink(missing_ok=True)
        if made_metrics:
            metrics.rmdir()


def control_sockets() -> set[str]:
    """The control sockets of gunicorn masters this test started (other runs in the checkout
    may have their own servers up meanwhile)."""
    mine = set()
    for path in (ROOT / ".run").glob("gunicorn-*.ctl"):
        pid = path.stem.removeprefix("gunicorn-")
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if f"\nPPid:\t{os.getpid()}\n" in status:
            mine.add(path.name)
    return mine


@pytest.mark.django_db(databases=["default", "owner"])
def test_each_gunicorn_has_its_own_control_socket_in_the_checkout():
    """gunicorn's default is one socket per user on the host: stopping one server deleted
    another's. gunicorn.conf.py gives each server its own, under .run/ of its checkout."""
    dbname = connections["owner"].settings_dict["NAME"]
    assert control_sockets() == set()
    with gunicorn(dbname):
        first = control_sockets()
        assert len(first) == 1
        with gunicorn(dbname):
            assert len(control_sockets()) == 2
        assert control_sockets() == first, "stopping the second server removed the first's socket"
    assert control_sockets() == set()


def test_make_help_prints_no_make_syntax():
    result = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    assert "$" not in result.stdout, [line for line in result.stdout.splitlines() if "$" in line]
