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

The tenant's own rules for its users live here too (roles, the seats of the
tier, the last active admin): the users API, the admin, `create_tenant_user`
and `load_demo` all call them. A rule of the tenant's state is a
TenantConflict (the API answers 409). Each change of a user is recorded in
the tenant's own audit log (`user.created`, `user.changed`, with the
`actor` label of tenants.tenant_audit) on the same connection, in the same
transaction. The users API passes `using=` the app connection, inside the
request's tenant transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from tenants import platform_audit, sessions
from tenants.constants import OWNER_DATABASE
from tenants.context import tenant_context
from tenants.models import Tenant, User, normalize_slug
from tenants.platform_audit import Actor
from tenants.roles import Role
from tenants.rules import check_staff_allowed, check_status_allowed
from tenants.tenant_audit import SYSTEM_ACTOR, record_event


class TenantConflict(Exception):
    """A change the tenant's current state forbids (the API answers 409); `code` names the rule."""

    code = "conflict"


class LastActiveAdmin(TenantConflict):
    code = "last_active_admin"


class SeatLimitReached(TenantConflict):
    code = "seat_limit"


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
    return _tenant_change(tenant, "status", status, "tenant.status", by=by, reason=reason, using=using)


def tenant_set_tier(tenant: Tenant, tier: str, *, by: Actor | None = None, using: str = OWNER_DATABASE) -> bool:
    """Move a tenant to another subscription tier; True when it changed."""
    if tier not in Tenant.Tier.values:
        raise ValidationError(
            {"subscription_tier": f"Unknown tier '{tier}': choose one of {', '.join(Tenant.Tier.values)}."}
        )
    return _tenant_change(tenant, "subscription_tier", tier, "tenant.tier", by=by, using=using)


def _tenant_change(
    tenant: Tenant, field: str, value: str, action: str, *, by: Actor | None, reason: str = "", using: str
) -> bool:
    """Set one field and record the change (from, to) in the same transaction; False when it is the same."""
    previous = getattr(tenant, field)
    if previous == value:
        return False
    setattr(tenant, field, value)
    with transaction.atomic(using=using):
        tenant.save(using=using, update_fields=[field, "updated_at"])
        detail = {"from": previous, "to": value}
        platform_audit.record(action, tenant=tenant, reason=reason, detail=detail, by=by, alias=using)
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
    by: Actor | None = None,
    actor: str = SYSTEM_ACTOR,
    using: str = OWNER_DATABASE,
) -> User:
    """A user of `tenant`, its username unique within that tenant only (built by the model's manager),
    within the seats of the tenant's tier.

    `check_password=False` is for callers that validated it already
    (the admin's form, with its errors on the field). Records `user.created`
    (by `actor`) in the tenant's audit log.
    """
    check_staff_allowed(tenant, is_staff=is_staff, is_superuser=is_superuser)
    check_role(role)
    if check_password and password is not None:
        try:
            validate_password(password, User(tenant=tenant, username=username, email=email))
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from exc
    with transaction.atomic(using=using), tenant_context(tenant, using=using):
        check_seat_free(tenant, using=using)
        user = User.all_tenants.db_manager(using).create_user(
            username, email, password, tenant=tenant, role=role, is_staff=is_staff, is_superuser=is_superuser, by=by
        )
        record_event(
            "user.created",
            actor=actor,
            target_type="user",
            target_id=str(user.pk),
            details={"username": username, "role": role, "email": email},
            using=using,
        )
    return user


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
    """Deactivate (the user's tokens stop working at once) or reactivate, by platform staff; True when it changed.

    The tenant's rules hold here too (its last active admin, its seats:
    TenantConflict); recorded in the platform trail and the tenant's log.
    """
    if user.is_active == active:
        return False
    with transaction.atomic(using=using):
        user_change(user, {"is_active": active}, acting_user=None, actor=SYSTEM_ACTOR, using=using)
        detail = {"user": user.username, "from": not active, "to": active}
        platform_audit.record("user.active", tenant=user.tenant, detail=detail, by=by, alias=using)
    return True


def user_change(
    user: User,
    changes: dict[str, Any],
    *,
    acting_user: User | None,
    actor: str,
    using: str = OWNER_DATABASE,
) -> User:
    """Change a user's `role`, `is_active` or `email` (the tenant admin's work).

    The rules are check_user_change's. Records `user.changed` with before
    and after of the fields that changed; nothing changed, nothing recorded.
    """
    tenant = user._tenant(using)
    with tenant_context(tenant, using=using):
        changed = check_user_change(user, changes, acting_user=acting_user, using=using)
        if not changed:
            return user
        before = {field: getattr(user, field) for field in changed}
        for field, value in changed.items():
            setattr(user, field, value)
        user.save(using=using, update_fields=list(changed))
        if changed.get("is_active") is False:
            # Reactivation must not bring old tokens back: the user logs in again.
            sessions.end_sessions_of(user, sessions.EndReason.DEACTIVATED, actor=actor, using=using)
        record_event(
            "user.changed",
            actor=actor,
            target_type="user",
            target_id=str(user.pk),
            details={"before": before, "after": changed},
            using=using,
        )
    return user


def check_user_change(user: User, changes: dict[str, Any], *, acting_user: User | None, using: str) -> dict[str, Any]:
    """The fields of `changes` that differ from `user`, once every rule allows them.

    400 (ValidationError): an unknown role or field, a bad email, changing
    one's own role or deactivating oneself (`acting_user`, None for staff; ask
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
    if acting_user is not None and acting_user.pk == user.pk:
        if "role" in changed:
            raise ValidationError({"role": "You cannot change your own role: ask another admin."}, code="self")
        if changed.get("is_active") is False:
            raise ValidationError({"is_active": "You cannot deactivate yourself: ask another admin."}, code="self")
    if changed.get("is_active") is True:
        with tenant_context(user.tenant_id, using=using):
            check_seat_free(user._tenant(using), using=using)
    return changed


def user_change_own_password(
    user: User,
    *,
    old_password: str,
    new_password: str,
    actor: str,
    keep_session: uuid.UUID | None = None,
    using: str = OWNER_DATABASE,
) -> User:
    """A user's own password change: the old one must match, the new one pass Django's validators (400).

    Every other session of the user ends (`keep_session`, the one asking, goes on)."""
    if not user.check_password(old_password):
        raise ValidationError({"old_password": "That is not your current password."}, code="wrong_password")
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from exc
    return _save_password(user, new_password, actor=actor, keep_session=keep_session, using=using)


def _save_password(user: User, password: str, *, actor: str, keep_session: uuid.UUID | None = None, using: str) -> User:
    user.set_password(password)
    with tenant_context(user.tenant_id, using=using):
        user.save(using=using, update_fields=["password"])
        sessions.end_sessions_of(user, sessions.EndReason.PASSWORD_CHANGED, actor=actor, keep=keep_session, using=using)
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
