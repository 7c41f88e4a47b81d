"""The tenant's own audit log: what happened inside one tenant, and who did it.

`record_event(action, actor=..., ...)` writes one row of `audit_events`
(tenants.models.TenantAuditEvent) for the current tenant, on the connection
and in the transaction of the change it records: the change and its event
commit or roll back together, so a refused or failed change leaves no event
and no committed change lacks one. Outside a tenant context it raises
NoTenantContext (fails closed: an event never lands in another tenant).

The services that make a change record it (tenants.services for users,
trading.services for trades), never the views or commands around them.

Actor labels (`actor_of(request)` for a request's principal):
- a user: the user's id as text, `str(user.id)`;
- an API key: `api_key:<key id>` (the request carries `request.api_key`);
- a background job: `system` (SYSTEM_ACTOR).

The platform's own trail (platform_audit: staff actions across tenants) is a
separate table written by platform_ops; docs/security.md says which event
goes where.
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS

from tenants.models import TenantAuditEvent

SYSTEM_ACTOR = "system"


def record_event(
    action: str,
    *,
    actor: str,
    target_type: str = "",
    target_id: str = "",
    details: dict[str, Any] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> None:
    """One event of the current tenant, in the caller's transaction on `using`."""
    TenantAuditEvent(
        action=action,
        actor=actor,
        target_type=target_type,
        target_id=str(target_id),
        details=details or {},
    ).save(using=using)


def actor_of(request: Any) -> str:
    """The audit label of the principal a request acts as (an API key, else its user)."""
    api_key = getattr(request, "api_key", None)
    if api_key is not None:
        return f"api_key:{api_key.id}"
    user = getattr(request, "tenant_user", None) or getattr(request, "user", None)
    if user is None or getattr(user, "pk", None) is None:
        return SYSTEM_ACTOR
    return str(user.pk)


def user_actor(user: Any) -> str:
    """The label of a user acting in person (a command run for them, the admin)."""
    return str(user.pk)
