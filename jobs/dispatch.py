"""Sending jobs as tenants: the one place the beat fan-out and `run_tenant_job` share.

Each job is sent inside `tenant_context(tenant)`, so TenantTask puts that
tenant in the message headers. Suspended tenants are skipped with a reason;
the platform tenant (staff accounts, no trading) gets no jobs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from celery.result import AsyncResult
from django.conf import settings
from django.utils import timezone

from tenants.constants import DEFAULT_TENANT_ID
from tenants.context import tenant_context
from tenants.models import Tenant, User

if TYPE_CHECKING:
    from celery import Task


class UnknownJob(LookupError):
    pass


def job_names() -> list[str]:
    from jobs.tasks import JOBS

    return sorted(JOBS)


def job_task(name: str) -> Task:
    from jobs.tasks import JOBS

    try:
        return JOBS[name]
    except KeyError:
        raise UnknownJob(f"Unknown job {name!r}: choose one of {', '.join(job_names())}.") from None


def jobs_due_now() -> datetime:
    """The `as_of` of a job sent now: the current minute, so that the same
    schedule tick sent twice names the same snapshots."""
    return timezone.now().replace(second=0, microsecond=0)


def tenants_for_jobs() -> Iterable[Tenant]:
    """Every customer tenant: not the platform tenant (staff), nor the `default` tenant while it
    has no users. `default` holds the rows of a legacy single-tenant database adopted by the
    migrations (docs/admin.md); on a fresh install it is empty and a job there computes nothing."""
    tenants = list(Tenant.objects.exclude(slug=settings.PLATFORM_TENANT_SLUG).order_by("slug"))
    return [tenant for tenant in tenants if tenant.pk != DEFAULT_TENANT_ID or _has_users(tenant)]


def _has_users(tenant: Tenant) -> bool:
    with tenant_context(tenant):
        return User.objects.exists()


def send_for_tenants(
    job: str, tenants: Iterable[Tenant] | None, as_of: str
) -> tuple[dict[str, AsyncResult], dict[str, str]]:
    """Send `job(as_of)` once per active tenant; returns (sent by slug, skip reason by slug)."""
    task = job_task(job)
    sent: dict[str, AsyncResult] = {}
    skipped: dict[str, str] = {}
    for tenant in tenants_for_jobs() if tenants is None else tenants:
        if not tenant.is_active:
            skipped[tenant.slug] = f"tenant {tenant.slug!r} is {tenant.status}"
            continue
        with tenant_context(tenant):
            sent[tenant.slug] = task.delay(as_of)
    return sent, skipped
