"""Shared bits of the tenant management commands: the owner connection, lookups
with errors that say what to do, and the exit-code convention (0 ok, 1 a
finding such as a gap in RLS, 2 bad arguments via CommandError)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from tenants import services
from tenants.models import Tenant


def tenant_by_slug(slug: str) -> Tenant:
    """tenants.services.tenant_by_slug as a command error (exit 2) on an unknown slug."""
    try:
        return services.tenant_by_slug(slug)
    except services.TenantNotFound as exc:
        raise CommandError(str(exc), returncode=2) from exc


def refused(what: str, exc: ValidationError) -> CommandError:
    """A service's refusal as a command error (exit 2), its messages kept word for word."""
    return CommandError(f"{what}: {'; '.join(exc.messages)}", returncode=2)
