"""The two rules that hold the platform together, one place each, used by the models and the services.

- staff only in the platform tenant (PLATFORM_TENANT_SLUG): the admin logs in
  platform users only (tenants.http.auth.PlatformStaffBackend), so a staff flag
  anywhere else would be a silently useless account, or a hole if that
  backend ever changed;
- the platform tenant cannot be suspended: its users are the staff, and a
  suspension would lock the platform out of its own admin.

The models call these from clean() and save(), so no path (the admin, the
commands, a shell) skips them; the services call them before they write.
This module imports no model: the models stand on it, not the reverse.
Every refusal is a ValidationError naming what is wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from tenants.models import Tenant


def is_platform(tenant: Tenant) -> bool:
    """The tenant whose users are the staff."""
    return tenant.slug == settings.PLATFORM_TENANT_SLUG


def check_staff_allowed(tenant: Tenant, *, is_staff: bool, is_superuser: bool) -> None:
    """Staff (and superusers, who are staff) only in the platform tenant."""
    if (is_staff or is_superuser) and not is_platform(tenant):
        raise ValidationError(
            f"Only users of the platform tenant '{settings.PLATFORM_TENANT_SLUG}' can be staff; "
            f"'{tenant.slug}' is a customer tenant.",
            code="staff_outside_platform",
        )


def check_status_allowed(tenant: Tenant, status: str) -> None:
    """Known statuses only, and never a suspended platform tenant."""
    statuses = tenant.Status.values
    if status not in statuses:
        raise ValidationError({"status": f"Unknown status '{status}': choose {' or '.join(statuses)}."}, code="invalid")
    check_platform_not_suspended(tenant, status)


def check_platform_not_suspended(tenant: Tenant, status: str) -> None:
    """The save guard: an unknown status is left to the database's CHECK constraint."""
    if status == tenant.Status.SUSPENDED and is_platform(tenant):
        raise ValidationError(
            {"status": "The platform tenant cannot be suspended: its users are the staff."},
            code="platform_suspended",
        )
