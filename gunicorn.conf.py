"""gunicorn reads this file from the working directory on start (make run, the tests' servers).

Metrics across workers: prometheus-client's multi-process mode needs
PROMETHEUS_MULTIPROC_DIR set before any worker imports it, and a fresh
directory per server start. Unless the environment names one (then the
operator empties it before each start), a new temporary directory is made
here and removed on exit; a dead worker's live values are marked as gone.
"""

import os
import shutil
import tempfile

_made_here = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _made_here = tempfile.mkdtemp(prefix="alphapulse-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_here


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_here:
        shutil.rmtree(_made_here, ignore_errors=True)
