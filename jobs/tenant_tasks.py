"""Celery tasks that run as a tenant: the tenant travels in the message headers.

Contract:
- `TenantTask.apply_async` (and so `.delay`) must be called inside
  `tenant_context(A)`; it puts A's id in the message headers (never in the
  arguments, where any caller could forge it; a tenant header passed by the
  caller is overwritten). Outside any context it raises `NoTenantContext`:
  nothing is sent.
- The whole message is signed (HMAC-SHA256, a key derived from SECRET_KEY):
  task name, task id, retry number, tenant, arguments, keyword arguments and
  the time it was sent, together. A message sent past this wrapper
  (`send_task` with a hand-made header, a message pushed into Redis by hand),
  or a genuine one edited (other `as_of`, its header moved onto another task,
  another tenant) is refused by the worker, platform tasks (`fan_out`)
  included. A message older than JOB_MESSAGE_MAX_AGE is refused, and so is
  one whose (id, retry) already ran to an end: the worker marks it consumed in
  Redis when it finishes (kept longer than the maximum age). A delivery that
  never finished (a killed worker, acks_late) is not consumed and runs again.
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
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task
from celery.utils import uuid as new_task_id
from django.conf import settings
from django.core.cache import cache

from tenants.context import NoTenantContext, current_tenant_id, tenant_context

logger = logging.getLogger(__name__)

TENANT_HEADER = "alphapulse_tenant_id"
SIGNATURE_HEADER = "alphapulse_sig"
SENT_AT_HEADER = "alphapulse_sent_at"
CONSUMED_KEY = "jobs:consumed:{task_id}:{retries}"


class TenantHeaderInvalid(NoTenantContext):
    """The task's tenant header is not signed by this deployment (forged or edited)."""

    def __init__(self, detail: str) -> None:
        RuntimeError.__init__(self, f"Refusing the task's tenant header: {detail}.")


class MessageRefused(TenantHeaderInvalid):
    """The message is not one this deployment sent (edited, moved, unsigned), too old, or already consumed."""

    def __init__(self, detail: str) -> None:
        RuntimeError.__init__(self, f"Refusing the task message: {detail}.")


def message_signature(
    name: str, task_id: str, retries: int, tenant_id: str, args: Any, kwargs: Any, sent_at: str
) -> str:
    """HMAC over everything that decides what a message does; JSON so sender and worker agree byte for byte."""
    body = json.dumps(
        [name, task_id, int(retries or 0), tenant_id, list(args or ()), dict(kwargs or {}), sent_at],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    key = hashlib.sha256(b"alphapulse.jobs.message:" + settings.SECRET_KEY.encode()).digest()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def signed_headers(task: Task, args: Any, kwargs: Any, task_id: str, options: dict, tenant_id: str) -> dict:
    """The caller's headers without ours, then ours, signed over the whole message."""
    sent_at = datetime.now(UTC).isoformat()
    headers = {
        k: v
        for k, v in (options.pop("headers", None) or {}).items()
        if k not in (TENANT_HEADER, SIGNATURE_HEADER, SENT_AT_HEADER)
    }
    signature = message_signature(task.name, task_id, options.get("retries", 0), tenant_id, args, kwargs, sent_at)
    return {**headers, TENANT_HEADER: tenant_id, SENT_AT_HEADER: sent_at, SIGNATURE_HEADER: signature}


def verify_message(task: Task, args: Any, kwargs: Any, tenant_id: str) -> str:
    """Refuse an unsigned, edited, stale or consumed message; the consumed-key to mark at the end."""
    request = task.request
    headers = request.headers or {}
    sent_at = str(headers.get(SENT_AT_HEADER) or "")
    expected = message_signature(task.name, request.id, request.retries, tenant_id, args, kwargs, sent_at)
    if not hmac.compare_digest(str(headers.get(SIGNATURE_HEADER) or ""), expected):
        raise MessageRefused("its signature does not match (not sent by this deployment, or edited)")
    try:
        age = datetime.now(UTC) - datetime.fromisoformat(sent_at)
    except ValueError:
        raise MessageRefused("its sending time is unreadable") from None
    if age > timedelta(seconds=settings.JOB_MESSAGE_MAX_AGE):
        raise MessageRefused(f"it was sent {age} ago, past JOB_MESSAGE_MAX_AGE")
    key = CONSUMED_KEY.format(task_id=request.id, retries=int(request.retries or 0))
    if cache.get(key) is not None:
        raise MessageRefused(f"message {request.id} (retry {int(request.retries or 0)}) already ran")
    return key


def mark_consumed(key: str) -> None:
    """After a run that ended (success, failure or a retry sent): the same message never runs again."""
    cache.set(key, 1, timeout=settings.JOB_MESSAGE_MAX_AGE + 3600)


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
        headers = signed_headers(self, args, kwargs, task_id, options, str(tenant_id))
        return super().apply_async(args, kwargs, task_id, producer, link, link_error, headers=headers, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        refuse_leftover_tenant(self)
        tenant_id = (self.request.headers or {}).get(TENANT_HEADER)
        if not tenant_id:
            raise NoTenantContext()
        consumed = verify_message(self, args, kwargs, str(tenant_id))
        try:
            tenant_uuid = uuid.UUID(str(tenant_id))
        except ValueError:
            raise TenantHeaderInvalid("it is not a UUID") from None
        from tenants.models import Tenant

        try:
            tenant = Tenant.objects.filter(pk=tenant_uuid).first()
            if tenant is None or not tenant.is_active:
                reason = f"tenant {tenant_uuid} is {'gone' if tenant is None else tenant.status}"
                logger.warning("Skipping task %s[%s]: %s", self.name, self.request.id, reason)
                return {"skipped": reason, "tenant_id": str(tenant_uuid)}
            with tenant_context(tenant):
                return super().__call__(*args, **kwargs)
        finally:
            mark_consumed(consumed)


class PlatformTask(Task):
    """A task that deliberately runs outside any tenant: it may only read the
    tenants table and send TenantTasks, each inside tenant_context()."""

    abstract = True

    def apply_async(self, args=None, kwargs=None, task_id=None, producer=None, link=None, link_error=None, **options):
        task_id = task_id or new_task_id()
        # Signed like a tenant task, with no tenant: a hand-pushed fan_out is refused.
        headers = signed_headers(self, args, kwargs, task_id, options, "")
        return super().apply_async(args, kwargs, task_id, producer, link, link_error, headers=headers, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        refuse_leftover_tenant(self)
        if (self.request.headers or {}).get(TENANT_HEADER):
            raise MessageRefused("a platform task carries no tenant")
        consumed = verify_message(self, args, kwargs, "")
        try:
            return super().__call__(*args, **kwargs)
        finally:
            mark_consumed(consumed)
