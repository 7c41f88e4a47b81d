"""Tenant and user changes, one function each, used by the admin, the commands, offboarding and load_demo.

The platform rules they enforce (staff only in the platform tenant, the
platform tenant never suspended) are tenants.rules', which the models also call
from clean() and save(), so no path past these functions skips them either.
Every refusal is a ValidationError naming what is wrong (commands turn it into
CommandError, exit 2; the admin shows it on the form). Writes go to the owner
connection: platform work.

Each platform change is recorded in the audit trail here, by the function that
makes it, with the `Actor` it is given (the admin passes the request's user; a
command or a shell leaves it out: the operator running the process), in the
same transaction as the change. Whether a change is audited does not depend on
which surface made it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from tenants import platform_audit
from tenants.constants import OWNER_DATABASE
from tenants.context import tenant_context
from tenants.models import Tenant, User, normalize_slug
from tenants.platform_audit import Actor
from tenants.rules import check_staff_allowed, check_status_allowed

# -- tenants ---------------------------------------------------------------------


class TenantNotFound(LookupError):
    """No tenant has this slug; the message says how to list them."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"No tenant with slug '{slug}'. List them with: manage.py list_tenants")


def tenant_by_slug(slug: str, *, using: str = OWNER_DATABASE) -> Tenant:
    """The tenant with this slug, or TenantNotFound: the one lookup every command uses."""
    tenant = Tenant.objects.using(using).filter(slug=normalize_slug(slug)).first()
    if tenant is None:
        raise TenantNotFound(slug)
    return tenant


def tenant_create(
    *, slug: str, name: str, tier: str | None = None, by: Actor | None = None, using: str = OWNER_DATABASE
) -> Tenant:
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
    with transaction.atomic(using=using):
        tenant.save(using=using)
        platform_audit.record("tenant.create", tenant=tenant, detail={"name": name, "tier": tier}, by=by, alias=using)
    return tenant


def tenant_get_or_create(
    *, slug: str, name: str, tier: str, by: Actor | None = None, using: str = OWNER_DATABASE
) -> Tenant:
    """The tenant with this slug, made with `name` and `tier` if it is missing (idempotent set-up)."""
    existing = Tenant.objects.using(using).filter(slug=normalize_slug(slug)).first()
    return existing or tenant_create(slug=slug, name=name, tier=tier, by=by, using=using)


def platform_tenant(using: str = OWNER_DATABASE, *, by: Actor | None = None) -> Tenant:
    """The tenant whose users are the staff; created on first use (fresh database, createsuperuser)."""
    return tenant_get_or_create(
        slug=settings.PLATFORM_TENANT_SLUG, name="AlphaPulse Platform", tier=Tenant.Tier.ENTERPRISE, by=by, using=using
    )


def tenant_set_status(
    tenant: Tenant, status: str, *, by: Actor | None = None, reason: str = "", using: str = OWNER_DATABASE
) -> bool:
    """Suspend or reactivate; True when the status changed. The middleware reads it on every request."""
    check_status_allowed(tenant, status)
    previous = tenant.status
    if previous == status:
        return False
    tenant.status = status
    with transaction.atomic(using=using):
        tenant.save(using=using, update_fields=["status", "updated_at"])
        detail = {"from": previous, "to": status}
        platform_audit.record("tenant.status", tenant=tenant, reason=reason, detail=detail, by=by, alias=using)
    return True


def tenant_set_tier(tenant: Tenant, tier: str, *, by: Actor | None = None, using: str = OWNER_DATABASE) -> bool:
    """Move a tenant to another subscription tier; True when it changed."""
    if tier not in Tenant.Tier.values:
        raise ValidationError(
            {"subscription_tier": f"Unknown tier '{tier}': choose one of {', '.join(Tenant.Tier.values)}."}
        )
    previous = tenant.subscription_tier
    if previous == tier:
        return False
    tenant.subscription_tier = tier
    with transaction.atomic(using=using):
        tenant.save(using=using, update_fields=["subscription_tier", "updated_at"])
        detail = {"from": previous, "to": tier}
        platform_audit.record("tenant.tier", tenant=tenant, detail=detail, by=by, alias=using)
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
    by: Actor | None = None,
    using: str = OWNER_DATABASE,
) -> User:
    """A user of `tenant`, its username unique within that tenant only (built by the model's manager).

    `check_password=False` is for callers that validated it already
    (the admin's form, with its errors on the field).
    """
    check_staff_allowed(tenant, is_staff=is_staff, is_superuser=is_superuser)
    if check_password and password is not None:
        validate_password(password, User(tenant=tenant, username=username, email=email))
    return User.all_tenants.db_manager(using).create_user(
        username, email, password, tenant=tenant, is_staff=is_staff, is_superuser=is_superuser, by=by
    )


def check_username_free(tenant: Tenant, username: str, *, using: str = OWNER_DATABASE) -> None:
    """Usernames are unique within a tenant only (a global index would leak other tenants' names)."""
    User.all_tenants.db_manager(using).check_username_free(tenant, username)


def user_set_staff(
    user: User, *, is_staff: bool, is_superuser: bool = False, by: Actor | None = None, using: str = OWNER_DATABASE
) -> bool:
    """Grant or take away staff rights; True when they changed (recorded with the rights before and after)."""
    check_staff_allowed(user.tenant, is_staff=is_staff, is_superuser=is_superuser)
    was = {"is_staff": user.is_staff, "is_superuser": user.is_superuser}
    now = {"is_staff": is_staff or is_superuser, "is_superuser": is_superuser}
    changed = [field for field in now if now[field] != was[field]]
    if not changed:
        return False
    user.is_staff, user.is_superuser = now["is_staff"], now["is_superuser"]
    with transaction.atomic(using=using), tenant_context(user.tenant, using=using):
        user.save(using=using, update_fields=["is_staff", "is_superuser"])
        detail = {"user": user.username, **now} | {f"was_{field}": was[field] for field in changed}
        platform_audit.record("user.staff", tenant=user.tenant, detail=detail, by=by, alias=using)
    return True


def user_set_active(user: User, active: bool, *, by: Actor | None = None, using: str = OWNER_DATABASE) -> bool:
    """Deactivate (the user's tokens stop working at once) or reactivate; True when it changed."""
    if user.is_active == active:
        return False
    user.is_active = active
    with transaction.atomic(using=using), tenant_context(user.tenant, using=using):
        user.save(using=using, update_fields=["is_active"])
        detail = {"user": user.username, "from": not active, "to": active}
        platform_audit.record("user.active", tenant=user.tenant, detail=detail, by=by, alias=using)
    return True


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
