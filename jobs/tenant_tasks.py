"""Celery tasks that run as a tenant: the tenant travels in the message headers.

Contract:
- `TenantTask.apply_async` (and so `.delay`) must be called inside
  `tenant_context(A)`; it puts A's id in the message headers (never in the
  arguments, where any caller could forge it; a tenant header passed by the
  caller is overwritten). Outside any context it raises `NoTenantContext`:
  nothing is sent.
- The header is signed with SECRET_KEY and bound to the task id, so a
  message sent past this wrapper (`send_task` with a hand-made header, a
  message pushed into Redis by hand, one whose tenant was edited) is refused
  by the worker.
- In the worker, the task body runs inside `tenant_context(A)` on the default
  connection (the app role, under RLS), in one transaction. A missing or
  badly signed header fails closed (`NoTenantContext` / `TenantHeaderInvalid`,
  the task FAILS and is not retried). A suspended or deleted tenant's task is
  skipped: it returns `{"skipped": reason}` and logs the reason.
- The context ends with the task (tenant_context's own reset); every task
  also refuses to start while any tenant is still set, so a worker can never
  carry A into the next task.
- `PlatformTask` is the explicit exception: a task that runs outside any
  tenant (fan-out) and may only send tenant tasks inside `tenant_context()`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from typing import Any

from celery import Task
from celery.utils import uuid as new_task_id
from django.conf import settings

from tenants.context import NoTenantContext, current_tenant_id, tenant_context

logger = logging.getLogger(__name__)

TENANT_HEADER = "alphapulse_tenant_id"
SIGNATURE_HEADER = "alphapulse_tenant_sig"


class TenantHeaderInvalid(NoTenantContext):
    """The task's tenant header is not signed by this deployment (forged or edited)."""

    def __init__(self, detail: str) -> None:
        RuntimeError.__init__(self, f"Refusing the task's tenant header: {detail}.")


def header_signature(task_id: str, tenant_id: str) -> str:
    message = f"{task_id}:{tenant_id}".encode()
    key = hashlib.sha256(b"alphapulse.jobs.tenant-header:" + settings.SECRET_KEY.encode()).digest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def refuse_leftover_tenant(task: Task) -> None:
    """Called first by every task: refuse to start while any tenant is still set.

    Cannot happen through tenant_context (it resets in `finally`); if it ever
    does, stop rather than run this task as someone else. (In the task itself,
    not a task_prerun handler: Celery logs and swallows a signal handler's
    exception.)"""
    leftover = current_tenant_id()
    if leftover is not None:
        raise RuntimeError(f"Task {task.request.id} would start with tenant {leftover} still set; refusing to run it.")


class TenantTask(Task):
    """A task that runs as the tenant that sent it (see the module docstring)."""

    abstract = True

    def apply_async(self, args=None, kwargs=None, task_id=None, producer=None, link=None, link_error=None, **options):
        tenant_id = current_tenant_id()
        if tenant_id is None:
            raise NoTenantContext()
        # The id is fixed here (a retry passes its own) so the signature can bind to it.
        task_id = task_id or new_task_id()
        headers = {
            **(options.pop("headers", None) or {}),
            TENANT_HEADER: str(tenant_id),
            SIGNATURE_HEADER: header_signature(task_id, str(tenant_id)),
        }
        return super().apply_async(args, kwargs, task_id, producer, link, link_error, headers=headers, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        refuse_leftover_tenant(self)
        tenant_id = self._verified_tenant_id()
        from tenants.models import Tenant

        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None or not tenant.is_active:
            reason = f"tenant {tenant_id} is {'gone' if tenant is None else tenant.status}"
            logger.warning("Skipping task %s[%s]: %s", self.name, self.request.id, reason)
            return {"skipped": reason, "tenant_id": str(tenant_id)}
        with tenant_context(tenant):
            return super().__call__(*args, **kwargs)

    def _verified_tenant_id(self) -> uuid.UUID:
        headers = self.request.headers or {}
        tenant_id = headers.get(TENANT_HEADER)
        if not tenant_id:
            raise NoTenantContext()
        signature = headers.get(SIGNATURE_HEADER) or ""
        if not hmac.compare_digest(signature, header_signature(self.request.id, tenant_id)):
            raise TenantHeaderInvalid("its signature does not match")
        try:
            return uuid.UUID(tenant_id)
        except ValueError:
            raise TenantHeaderInvalid("it is not a UUID") from None


class PlatformTask(Task):
    """A task that deliberately runs outside any tenant: it may only read the
    tenants table and send TenantTasks, each inside tenant_context()."""

    abstract = True

    def apply_async(self, args=None, kwargs=None, task_id=None, producer=None, link=None, link_error=None, **options):
        headers = {
            k: v for k, v in (options.pop("headers", None) or {}).items() if k not in (TENANT_HEADER, SIGNATURE_HEADER)
        }
        return super().apply_async(args, kwargs, task_id, producer, link, link_error, headers=headers, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        refuse_leftover_tenant(self)
        return super().__call__(*args, **kwargs)
