"""The jobs: Celery tasks that run as one tenant, and the fan-out that sends them.

`portfolio_snapshot` and `risk_metrics` are TenantTasks: sent inside
tenant_context(A), they run in the worker as A (jobs.tenant_tasks). Their
arguments are only the job's inputs (`as_of`, fixed by the sender so that a
redelivery computes the same rows and the natural keys make it a no-op).

`fan_out` is the one platform task: Celery beat sends it (settings
CELERY_BEAT_SCHEDULE) and it sends the job once per active tenant; suspended
tenants are skipped with a logged reason.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from jobs.dispatch import jobs_due_now, send_for_tenants
from jobs.portfolio import take_snapshots
from jobs.risk import compute_risk_metrics
from jobs.tenant_tasks import PlatformTask, TenantTask
from tenants.context import require_tenant_id
from tenants.http.idempotency import purge_expired

logger = logging.getLogger(__name__)

# A database that is briefly away (restart, failover) is retried with backoff;
# any other error fails the task, once.
TRANSIENT = (OperationalError, InterfaceError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": True, "retry_backoff_max": 60, "max_retries": 5}


def _as_of(value: str) -> datetime:
    as_of = datetime.fromisoformat(value)
    if timezone.is_naive(as_of):
        raise ValueError(f"as_of must carry a time zone: {value!r}")
    return as_of


@shared_task(base=TenantTask, bind=True, name="jobs.portfolio_snapshot", **RETRY)
def portfolio_snapshot(self, as_of: str) -> dict[str, Any]:
    run = take_snapshots(_as_of(as_of))
    return {"job": "portfolio_snapshot", "tenant_id": str(require_tenant_id()), "as_of": as_of, **run.as_dict()}


@shared_task(base=TenantTask, bind=True, name="jobs.risk_metrics", **RETRY)
def risk_metrics(self, as_of: str, window_days: int = 30) -> dict[str, Any]:
    run = compute_risk_metrics(_as_of(as_of), window_days)
    return {"job": "risk_metrics", "tenant_id": str(require_tenant_id()), "as_of": as_of, **run.as_dict()}


@shared_task(base=TenantTask, bind=True, name="jobs.purge_idempotency_keys", **RETRY)
def purge_idempotency_keys(self, as_of: str) -> dict[str, Any]:
    """Delete the tenant's Idempotency-Keys older than 24 hours (tenants.http.idempotency)."""
    tenant_id = require_tenant_id()
    return {"job": "purge_idempotency_keys", "tenant_id": str(tenant_id), "deleted": purge_expired(tenant_id)}


JOBS = {
    "portfolio_snapshot": portfolio_snapshot,
    "risk_metrics": risk_metrics,
    "purge_idempotency_keys": purge_idempotency_keys,
}


@shared_task(base=PlatformTask, name="jobs.fan_out")
def fan_out(job: str, as_of: str | None = None) -> dict[str, Any]:
    """Send `job` once for every active tenant (as that tenant); log the suspended ones skipped."""
    as_of = as_of or jobs_due_now().isoformat()
    sent, skipped = send_for_tenants(job, None, as_of)
    for slug, reason in skipped.items():
        logger.warning("fan_out %s: skipping tenant %s: %s", job, slug, reason)
    return {"job": job, "as_of": as_of, "sent": {slug: r.id for slug, r in sent.items()}, "skipped": skipped}
