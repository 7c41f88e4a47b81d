"""gunicorn settings every `gunicorn alphapulse.wsgi` run here picks up (gunicorn reads
./gunicorn.conf.py from the working directory by default: make run, the tests' servers).

- gunicorn's own 400/414/431 answers come out as JSON, like the rest of the API.
- Metrics across workers: prometheus-client's multi-process mode needs
  PROMETHEUS_MULTIPROC_DIR set before any worker imports it, and a fresh
  directory per server start. Unless the environment names one (then the
  operator empties it before each start), a new temporary directory is made
  here and removed on exit; a dead worker's live values are marked as gone.
- gunicorn's control socket (`gunicornc`) is per server, inside this checkout:
  GUNICORN_CONTROL_SOCKET (make run sets `.run/gunicorn.ctl`), else
  `.run/gunicorn-<master pid>.ctl`. gunicorn's default, one per user
  (`~/.gunicorn/gunicorn.ctl`), is shared by every instance on the host, and
  stopping one server deleted another's.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent
sys.path.insert(0, str(CHECKOUT))

from alphapulse.gunicorn_errors import install  # noqa: E402  (after the path is set)

install()


def _control_socket() -> str:
    named = os.environ.get("GUNICORN_CONTROL_SOCKET")
    path = Path(named) if named else CHECKOUT / ".run" / f"gunicorn-{os.getpid()}.ctl"
    if len(str(path)) > 100:  # a Unix socket path holds at most 107 bytes
        path = Path(tempfile.mkdtemp(prefix="alphapulse-ctl-")) / "gunicorn.ctl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


control_socket = _control_socket()

_made_here = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _made_here = tempfile.mkdtemp(prefix="alphapulse-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_here


def when_ready(server):
    """Record a changed token key ring in the platform audit trail (tenants signing_keys --record).

    In a process of its own, not waited for: the master opens no database
    connection its workers would inherit, and the server does not wait on it."""
    import subprocess

    subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("manage.py")), "signing_keys", "--record"],
        stdout=subprocess.DEVNULL,
    )


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_here:
        shutil.rmtree(_made_here, ignore_errors=True)
