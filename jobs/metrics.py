"""Job counters and durations for `/metrics`, recorded by Celery's own task signals.

Every task a worker runs ends in one outcome:
- `succeeded`: the task body ran and returned;
- `skipped`: a TenantTask whose tenant is suspended or gone (it returns `{"skipped": ...}`);
- `refused`: the tenant header was missing, forged or edited (NoTenantContext and its
  TenantHeaderInvalid): a count above zero means someone sent tasks past TenantTask;
- `retried`, `failed`: anything else.

Labels are bounded: `task` is a registered task's name (a message naming an unknown task is
rejected before any signal), `outcome` one of OUTCOMES. Never a tenant id.

The worker is its own process, so its values reach the API's `/metrics` through
prometheus-client's multi-process mode: `make run` gives gunicorn and the worker the same
PROMETHEUS_MULTIPROC_DIR (emptied at each start), and each pool child writes its own files there.
"""

from __future__ import annotations

import time
from typing import Any

from celery import signals
from prometheus_client import Counter, Histogram

from platform_ops.metrics import PREFIX
from tenants.context import NoTenantContext

OUTCOMES = ("succeeded", "skipped", "refused", "retried", "failed")

JOBS = Counter(f"{PREFIX}_jobs", "Background tasks finished, by task and outcome.", ["task", "outcome"])
JOB_DURATION = Histogram(
    f"{PREFIX}_job_duration_seconds",
    "Time from a task's start to its end in the worker, by task.",
    ["task"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)

# task id -> monotonic start; one entry per running task of this pool process.
_started: dict[str, float] = {}


def outcome_of(state: str | None, retval: Any) -> str:
    if state == "SUCCESS":
        return "skipped" if isinstance(retval, dict) and "skipped" in retval else "succeeded"
    if state == "RETRY":
        return "retried"
    if isinstance(retval, NoTenantContext):
        return "refused"
    return "failed"


@signals.task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


@signals.task_postrun.connect
def _task_finished(
    task_id: str | None = None, task: Any = None, retval: Any = None, state: str | None = None, **_: Any
) -> None:
    began = _started.pop(task_id, None) if task_id else None
    name = getattr(task, "name", None) or "unknown"
    JOBS.labels(task=name, outcome=outcome_of(state, retval)).inc()
    if began is not None:
        JOB_DURATION.labels(task=name).observe(time.monotonic() - began)
