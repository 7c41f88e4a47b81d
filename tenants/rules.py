"""The two rules that hold the platform together, one place each, used by the models and the services.

- staff only in the platform tenant (PLATFORM_TENANT_SLUG): the admin logs in
  platform users only (tenants.http.auth.PlatformStaffBackend), so a staff flag
  anywhere else would be a silently useless account, or a hole if that
  backend ever changed;
- the platform tenant cannot be suspended: its users are the staff, and a
  suspension would lock the platform out of its own admin;
- the platform tenant's identity is fixed: its slug never changes, and no
  other tenant takes that slug (a rename locked every staff account out at
  once and left the renamed tenant without the platform rules);
- a tenant is not made active again while a guard registered by the layers
  above refuses it (platform_ops: an offboarding is unfinished).

The models call these from clean() and save(), so no path (the admin, the
commands, a shell) skips them; the services call them before they write.
This module imports no model: the models stand on it, not the reverse.
Every refusal is a ValidationError naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
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


# Rules of the layers above (tenants never imports them) that may refuse an
# activation: each raises ValidationError naming why. platform_ops registers
# "not while an offboarding is unfinished" (platform_ops.apps).
ActivationGuard = Callable[["Tenant"], None]
_activation_guards: list[ActivationGuard] = []


def register_activation_guard(guard: ActivationGuard) -> ActivationGuard:
    if guard not in _activation_guards:
        _activation_guards.append(guard)
    return guard


def check_status_allowed(tenant: Tenant, status: str) -> None:
    """Known statuses only, never a suspended platform tenant, no activation a guard refuses."""
    statuses = tenant.Status.values
    if status not in statuses:
        raise ValidationError({"status": f"Unknown status '{status}': choose {' or '.join(statuses)}."}, code="invalid")
    check_platform_not_suspended(tenant, status)
    if status == tenant.Status.ACTIVE and tenant.pk is not None:
        for guard in _activation_guards:
            guard(tenant)


def check_platform_identity(tenant: Tenant, *, using: str | None = None) -> None:
    """The platform tenant keeps its slug, and no other tenant takes it.

    Read from the stored row (not the instance, which a form has already
    changed): the save guard of Tenant.save() and the admin form's clean()."""
    if tenant._state.adding or tenant.pk is None:
        return
    from tenants.constants import OWNER_DATABASE

    stored = type(tenant).objects.using(using or tenant._state.db or OWNER_DATABASE).filter(pk=tenant.pk).first()
    if stored is None or stored.slug == tenant.slug:
        return
    if is_platform(stored) or is_platform(tenant):
        raise ValidationError(
            {
                "slug": f"The platform tenant's slug '{settings.PLATFORM_TENANT_SLUG}' cannot change, "
                "and no other tenant can take it: staff log in through it."
            },
            code="platform_identity",
        )


def check_platform_not_suspended(tenant: Tenant, status: str) -> None:
    """The save guard: an unknown status is left to the database's CHECK constraint."""
    if status == tenant.Status.SUSPENDED and is_platform(tenant):
        raise ValidationError(
            {"status": "The platform tenant cannot be suspended: its users are the staff."},
            code="platform_suspended",
        )
