"""Shared bits of the tenant management commands: the owner connection, lookups
with errors that say what to do, and the exit-code convention (0 ok, 1 a
finding such as a gap in RLS, 2 bad arguments via CommandError)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from tenants.constants import OWNER_DATABASE
from tenants.models import Tenant, normalize_slug


def tenant_by_slug(slug: str) -> Tenant:
    tenant = Tenant.objects.using(OWNER_DATABASE).filter(slug=normalize_slug(slug)).first()
    if tenant is None:
        raise CommandError(
            f"No tenant with slug '{slug}'. List them with: manage.py shell -c "
            '"from tenants.models import Tenant; print([t.slug for t in Tenant.objects.all()])"',
            returncode=2,
        )
    return tenant


def refused(what: str, exc: ValidationError) -> CommandError:
    """A service's refusal as a command error (exit 2), its messages kept word for word."""
    return CommandError(f"{what}: {'; '.join(exc.messages)}", returncode=2)
