"""Tenant and user rules, one place for each, used by the admin, the commands and load_demo.

Two rules hold the platform together and live only here:
- staff only in the platform tenant (PLATFORM_TENANT_SLUG): the admin logs in
  platform users only (tenants.http.auth.PlatformStaffBackend), so a staff flag
  anywhere else would be a silently useless account, or a hole if that
  backend ever changed;
- the platform tenant cannot be suspended: its users are the staff, and a
  suspension would lock the platform out of its own admin.
The models call the rule checks from clean() and save(), so no path past the
admin or the commands skips them. Every refusal is a ValidationError naming
what is wrong (commands turn it into CommandError, exit 2; the admin shows it
on the form). Writes go to the owner connection: platform work.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from tenants.constants import OWNER_DATABASE
from tenants.context import tenant_context
from tenants.models import Tenant, User, normalize_slug

# -- the rules -----------------------------------------------------------------


def is_platform(tenant: Tenant) -> bool:
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
    if status not in Tenant.Status.values:
        raise ValidationError(
            {"status": f"Unknown status '{status}': choose {' or '.join(Tenant.Status.values)}."}, code="invalid"
        )
    check_platform_not_suspended(tenant, status)


def check_platform_not_suspended(tenant: Tenant, status: str) -> None:
    """The save guard: an unknown status is left to the database's CHECK constraint."""
    if status == Tenant.Status.SUSPENDED and is_platform(tenant):
        raise ValidationError(
            {"status": "The platform tenant cannot be suspended: its users are the staff."},
            code="platform_suspended",
        )


# -- tenants ---------------------------------------------------------------------


def tenant_create(*, slug: str, name: str, tier: str | None = None, using: str = OWNER_DATABASE) -> Tenant:
    slug = normalize_slug(slug)
    tier = tier or Tenant.Tier.PRO
    if tier not in Tenant.Tier.values:
        raise ValidationError(
            {"subscription_tier": f"Unknown tier '{tier}': choose one of {', '.join(Tenant.Tier.values)}."}
        )
    if Tenant.objects.using(using).filter(slug=slug).exists():
        raise ValidationError({"slug": f"A tenant with slug '{slug}' already exists."}, code="unique")
    tenant = Tenant(slug=slug, name=name, subscription_tier=tier)
    tenant.full_clean(validate_unique=False)
    tenant.save(using=using)
    return tenant


def tenant_get_or_create(*, slug: str, name: str, tier: str, using: str = OWNER_DATABASE) -> Tenant:
    """The tenant with this slug, made with `name` and `tier` if it is missing (idempotent set-up)."""
    existing = Tenant.objects.using(using).filter(slug=normalize_slug(slug)).first()
    return existing or tenant_create(slug=slug, name=name, tier=tier, using=using)


def platform_tenant(using: str = OWNER_DATABASE) -> Tenant:
    """The tenant whose users are the staff; created on first use (fresh database, createsuperuser)."""
    return tenant_get_or_create(
        slug=settings.PLATFORM_TENANT_SLUG, name="AlphaPulse Platform", tier=Tenant.Tier.ENTERPRISE, using=using
    )


def tenant_set_status(tenant: Tenant, status: str, *, using: str = OWNER_DATABASE) -> bool:
    """Suspend or reactivate; True when the status changed. The middleware reads it on every request."""
    check_status_allowed(tenant, status)
    if tenant.status == status:
        return False
    tenant.status = status
    tenant.save(using=using, update_fields=["status", "updated_at"])
    return True


# -- users -------------------------------------------------------------------------


def user_create(
    *,
    tenant: Tenant,
    username: str,
    password: str | None,
    email: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
    check_password: bool = True,
    using: str = OWNER_DATABASE,
) -> User:
    """A user of `tenant`, its username unique within that tenant only.

    `check_password=False` is for callers that validated it already
    (createsuperuser asks the operator whether to bypass the validators).
    """
    check_staff_allowed(tenant, is_staff=is_staff, is_superuser=is_superuser)
    user = User(
        tenant=tenant,
        username=username,
        email=email,
        is_staff=is_staff or is_superuser,
        is_superuser=is_superuser,
    )
    # Uniqueness is checked below, inside the tenant; the tenant is set, not a form field.
    user.full_clean(exclude=["password", "tenant"], validate_unique=False, validate_constraints=False)
    if check_password and password is not None:
        validate_password(password, user)
    user.set_password(password)
    with tenant_context(tenant, using=using):
        check_username_free(tenant, username, using=using)
        user.save(using=using)
    return user


def check_username_free(tenant: Tenant, username: str, *, using: str = OWNER_DATABASE) -> None:
    """Usernames are unique within a tenant only (a global index would leak other tenants' names)."""
    if User.all_tenants.using(using).filter(tenant=tenant, username=username).exists():
        raise ValidationError({"username": f"Tenant '{tenant.slug}' already has a user '{username}'."}, code="unique")


def user_set_staff(user: User, *, is_staff: bool, is_superuser: bool = False, using: str = OWNER_DATABASE) -> User:
    check_staff_allowed(user.tenant, is_staff=is_staff, is_superuser=is_superuser)
    user.is_staff, user.is_superuser = is_staff or is_superuser, is_superuser
    with tenant_context(user.tenant, using=using):
        user.save(using=using, update_fields=["is_staff", "is_superuser"])
    return user


def user_set_password(user: User, password: str, *, using: str = OWNER_DATABASE) -> User:
    validate_password(password, user)
    user.set_password(password)
    with tenant_context(user.tenant, using=using):
        user.save(using=using, update_fields=["password"])
    return user


def users_named(username: str, *, tenant_slug: str | None = None, using: str = OWNER_DATABASE) -> list[User]:
    """Every user called `username`, in one tenant or in all (usernames repeat across tenants)."""
    users = User.all_tenants.using(using).select_related("tenant").filter(username=username)
    if tenant_slug is not None:
        users = users.filter(tenant__slug=tenant_slug)
    return list(users.order_by("tenant__slug"))
