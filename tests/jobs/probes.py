"""Test-only tasks, loaded by the test worker (`--include tests.jobs.probes`):
they report what the worker sees while running a task."""

from __future__ import annotations

import os

from celery import shared_task
from django.db import connection

from jobs.tenant_tasks import PlatformTask, TenantTask
from tenants.context import current_tenant_id
from tenants.database.tenant_setting import read_tenant_setting
from trading.models import Trade


def _seen() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (role,) = cursor.fetchone()
    # The unscoped manager: only RLS limits what this returns.
    visible = sorted({str(t) for t in Trade.all_tenants.values_list("tenant_id", flat=True).distinct()})
    tenant_id = current_tenant_id()
    return {
        "context": None if tenant_id is None else str(tenant_id),
        "setting": read_tenant_setting(connection) or None,
        "role": role,
        "visible_tenants": visible,
        "pid": os.getpid(),
    }


@shared_task(base=TenantTask, bind=True, name="tests.probe_tenant")
def probe_tenant(self) -> dict:
    return _seen()


@shared_task(base=PlatformTask, name="tests.probe_platform")
def probe_platform() -> dict:
    return _seen()
