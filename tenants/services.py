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
on the form; the API answers 400), or a TenantConflict for a rule of the
tenant's state (the last active admin, the seats of its tier: the API
answers 409). Writes go to the owner connection by default (platform work);
the users API passes `using=` the app connection, inside the request's
tenant transaction.

The tenant's own rules for its users live here too: the users API, the
admin's form, `create_tenant_user` and `load_demo` all call them, and each
change records its tenant audit event (`user.created`, `user.changed`) on
the same connection, in the same transaction (tenants.tenant_audit).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from tenants.constants import OWNER_DATABASE
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tenants.roles import Role
from tenants.tenant_audit import SYSTEM_ACTOR, record_event


class TenantConflict(Exception):
    """A change the tenant's current state forbids (the API answers 409); `code` names the rule."""

    code = "conflict"


class LastActiveAdmin(TenantConflict):
    code = "last_active_admin"


class SeatLimitReached(TenantConflict):
    code = "seat_limit"


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
    existing = Tenant.objects.using(using).filter(slug=slug).first()
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


def check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError(
            {"role": f"Unknown role '{role}': choose {', '.join(Role.values)}."}, code="invalid_choice"
        )


def seat_limit(tenant: Tenant) -> int | None:
    """Active users a tenant's tier allows (TENANT_SEAT_LIMITS), None for no limit."""
    return settings.TENANT_SEAT_LIMITS.get(tenant.subscription_tier)


def _lock_active_users(using: str) -> None:
    """Lock the current tenant's active users until the transaction ends.

    The seat and last-admin rules count rows and then write: two concurrent
    requests (two admins demoting each other, two creations racing for the
    last seat) would both pass the count. Whoever locks second waits, and
    its count (a new statement under READ COMMITTED) sees the first's commit.
    By tenant (the scoped manager), so on Citus it routes to one worker.
    """
    list(User.objects.using(using).select_for_update().filter(is_active=True).values_list("pk", flat=True))


def check_seat_free(tenant: Tenant, *, using: str) -> None:
    """Raise SeatLimitReached when the tenant's active users fill its tier. Inside the tenant's context."""
    limit = seat_limit(tenant)
    if limit is None:
        return
    _lock_active_users(using)
    active = User.objects.using(using).filter(is_active=True).count()
    if active >= limit:
        raise SeatLimitReached(
            f"Tenant '{tenant.slug}' has {active} active users, all the seats of its {tenant.subscription_tier} "
            f"tier ({limit}): deactivate a user or move to a larger tier."
        )


def user_create(
    *,
    tenant: Tenant,
    username: str,
    password: str | None,
    email: str = "",
    role: str = Role.TRADER,
    is_staff: bool = False,
    is_superuser: bool = False,
    check_password: bool = True,
    actor: str = SYSTEM_ACTOR,
    using: str = OWNER_DATABASE,
) -> User:
    """A user of `tenant`, its username unique within that tenant only, within its seats.

    `check_password=False` is for callers that validated it already
    (createsuperuser asks the operator whether to bypass the validators).
    Records `user.created` (by `actor`) in the tenant's audit log.
    """
    check_staff_allowed(tenant, is_staff=is_staff, is_superuser=is_superuser)
    check_role(role)
    user = User(
        tenant=tenant,
        username=username,
        email=email,
        role=role,
        is_staff=is_staff or is_superuser,
        is_superuser=is_superuser,
    )
    # Uniqueness is checked below, inside the tenant; the tenant is set, not a form field.
    user.full_clean(exclude=["password", "tenant"], validate_unique=False, validate_constraints=False)
    if check_password and password is not None:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    with tenant_context(tenant, using=using):
        check_username_free(tenant, username, using=using)
        check_seat_free(tenant, using=using)
        user.save(using=using)
        record_event(
            "user.created",
            actor=actor,
            target_type="user",
            target_id=str(user.pk),
            details={"username": username, "role": role, "email": email},
            using=using,
        )
    return user


def user_change(
    user: User,
    changes: dict[str, Any],
    *,
    by: User | None,
    actor: str,
    using: str = OWNER_DATABASE,
) -> User:
    """Change a user's `role`, `is_active` or `email` (the tenant admin's work).

    The rules are check_user_change's. Records `user.changed` with before
    and after of the fields that changed; nothing changed, nothing recorded.
    """
    tenant = user._tenant(using)
    with tenant_context(tenant, using=using):
        changed = check_user_change(user, changes, by=by, using=using)
        if not changed:
            return user
        before = {field: getattr(user, field) for field in changed}
        for field, value in changed.items():
            setattr(user, field, value)
        user.save(using=using, update_fields=list(changed))
        record_event(
            "user.changed",
            actor=actor,
            target_type="user",
            target_id=str(user.pk),
            details={"before": before, "after": changed},
            using=using,
        )
    return user


def check_user_change(user: User, changes: dict[str, Any], *, by: User | None, using: str) -> dict[str, Any]:
    """The fields of `changes` that differ from `user`, once every rule allows them.

    400 (ValidationError): an unknown role or field, a bad email, changing
    one's own role or deactivating oneself (`by` is the acting user; ask
    another admin). 409: demoting or deactivating the tenant's last active
    admin (LastActiveAdmin), reactivating past the tier's seats
    (SeatLimitReached). Those two lock the tenant's active users until the
    caller's transaction ends.
    """
    unknown = set(changes) - {"role", "is_active", "email"}
    if unknown:
        raise ValidationError(
            {field: "Not changeable here: only role, is_active and email." for field in sorted(unknown)}
        )
    changed = {field: value for field, value in changes.items() if getattr(user, field) != value}
    if "role" in changed:
        check_role(changed["role"])
    if changed.get("email"):
        try:
            validate_email(changed["email"])
        except ValidationError as exc:
            raise ValidationError({"email": exc.messages}) from exc
    was_admin = user.is_active and user.role == Role.ADMIN
    stays_admin = changed.get("role", user.role) == Role.ADMIN and changed.get("is_active", user.is_active)
    if was_admin and not stays_admin:
        with tenant_context(user.tenant_id, using=using):
            _lock_active_users(using)
            admins = User.objects.using(using).filter(is_active=True, role=Role.ADMIN).count()
        if admins <= 1:
            raise LastActiveAdmin(
                f"'{user.username}' is the last active admin of tenant '{user._tenant(using).slug}': "
                "make another user admin first."
            )
    if by is not None and by.pk == user.pk:
        if "role" in changed:
            raise ValidationError({"role": "You cannot change your own role: ask another admin."}, code="self")
        if changed.get("is_active") is False:
            raise ValidationError({"is_active": "You cannot deactivate yourself: ask another admin."}, code="self")
    if changed.get("is_active") is True:
        with tenant_context(user.tenant_id, using=using):
            check_seat_free(user._tenant(using), using=using)
    return changed


def user_change_own_password(
    user: User, *, old_password: str, new_password: str, actor: str, using: str = OWNER_DATABASE
) -> User:
    """A user's own password change: the old one must match, the new one pass Django's validators (400)."""
    if not user.check_password(old_password):
        raise ValidationError({"old_password": "That is not your current password."}, code="wrong_password")
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from exc
    return _save_password(user, new_password, actor=actor, using=using)


def _save_password(user: User, password: str, *, actor: str, using: str) -> User:
    user.set_password(password)
    with tenant_context(user.tenant_id, using=using):
        user.save(using=using, update_fields=["password"])
        # Which field changed, never the hash.
        record_event(
            "user.changed",
            actor=actor,
            target_type="user",
            target_id=str(user.pk),
            details={"changed": ["password"]},
            using=using,
        )
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


def user_set_password(user: User, password: str, *, actor: str = SYSTEM_ACTOR, using: str = OWNER_DATABASE) -> User:
    """Set a password for a user (platform staff's work: commands, the admin)."""
    validate_password(password, user)
    return _save_password(user, password, actor=actor, using=using)


def users_named(username: str, *, tenant_slug: str | None = None, using: str = OWNER_DATABASE) -> list[User]:
    """Every user called `username`, in one tenant or in all (usernames repeat across tenants)."""
    users = User.all_tenants.using(using).select_related("tenant").filter(username=username)
    if tenant_slug is not None:
        users = users.filter(tenant__slug=tenant_slug)
    return list(users.order_by("tenant__slug"))
