"""`manage.py run_tenant_job portfolio_snapshot|risk_metrics --tenant acme|--all`

Runs a job now, through the queue (a running worker does the work, as the
tenant, exactly as beat's runs do), shows progress, waits for every job and
exits non-zero naming the tenants whose job failed. An unknown job or tenant,
a suspended tenant named with --tenant, or no worker answering: CommandError.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from celery.result import AsyncResult
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone
from tqdm import tqdm

from alphapulse.celery import app
from jobs.dispatch import UnknownJob, job_names, job_task, jobs_due_now, send_for_tenants, tenants_for_jobs
from tenants import services
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Run a tenant job now through the Celery queue, for one tenant or all, and wait for it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", help=f"one of: {', '.join(job_names())}")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--tenant", metavar="SLUG", help="the tenant's slug")
        which.add_argument("--all", action="store_true", help="every active tenant (suspended ones are skipped)")
        parser.add_argument("--as-of", help="ISO time the job computes for (default: the current minute, UTC)")
        parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the jobs (default 600)")

    def handle(self, *args, job: str, tenant: str | None, all: bool, as_of: str | None, timeout: float, **options):
        try:
            job_task(job)
        except UnknownJob as exc:
            raise CommandError(str(exc)) from None
        moment = self._as_of(as_of)
        tenants = tenants_for_jobs() if all else [self._tenant(tenant)]
        if not app.control.ping(timeout=2):
            raise CommandError("No Celery worker answered: start one (`make run`, or `celery -A alphapulse worker`).")
        sent, skipped = send_for_tenants(job, tenants, moment.isoformat())
        for slug, reason in skipped.items():
            self.stdout.write(self.style.WARNING(f"skipped {slug}: {reason}"))
        failures = self._wait(job, sent, timeout)
        if failures:
            names = "; ".join(f"{slug}: {why}" for slug, why in failures.items())
            raise CommandError(f"{job} failed for {len(failures)} of {len(sent)} tenant(s): {names}")
        self.stdout.write(self.style.SUCCESS(f"{job} as of {moment.isoformat()}: done for {len(sent)} tenant(s)."))

    def _tenant(self, slug: str | None) -> Tenant:
        try:
            found = services.tenant_by_slug(slug or "", using=DEFAULT_DB_ALIAS)
        except services.TenantNotFound as exc:
            raise CommandError(str(exc)) from exc
        if not found.is_active:
            raise CommandError(f"Tenant {slug!r} is {found.status}: its jobs do not run.")
        return found

    def _as_of(self, value: str | None) -> datetime:
        if value is None:
            return jobs_due_now()
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise CommandError(f"--as-of {value!r} is not an ISO date-time (e.g. 2026-12-01T12:00:00+00:00).") from None
        return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)

    def _wait(self, job: str, sent: dict[str, AsyncResult], timeout: float) -> dict[str, str]:
        failures: dict[str, str] = {}
        pending = dict(sent)
        deadline = time.monotonic() + timeout
        with tqdm(total=len(sent), desc=job, unit="tenant", file=self.stderr, disable=None) as progress:
            while pending and time.monotonic() < deadline:
                for slug, result in list(pending.items()):
                    if not result.ready():
                        continue
                    del pending[slug]
                    progress.update(1)
                    if result.successful():
                        outcome = result.result
                        self.stdout.write(f"{slug}: {self._describe(outcome)}")
                    else:
                        failures[slug] = f"{type(result.result).__name__}: {result.result}"
                time.sleep(0.2)
        for slug in pending:
            failures[slug] = f"not finished after {timeout:g} s"
        return failures

    @staticmethod
    def _describe(outcome: object) -> str:
        if isinstance(outcome, dict):
            if "skipped" in outcome:
                return f"skipped ({outcome['skipped']})"
            return ", ".join(f"{k} {v}" for k, v in outcome.items() if k not in ("job", "tenant_id", "as_of"))
        return str(outcome)
