"""Tenants, tenant-aware users, and the base every tenant table builds on.

Isolation has two independent layers:
1. PostgreSQL row-level security (tenants.catalog.rls_operations.EnableTenantRLS),
   which holds even for raw SQL and forgotten filters;
2. `objects`, a `TenantManager` on every tenant model, which filters by the
   current tenant (tenants.context) and raises NoTenantContext without one.
   This layer is what keeps isolation during an emergency RLS bypass.

`all_tenants`, a plain unscoped manager, is declared first and so is Django's
default manager: Django and libraries use it internally (the admin,
validation, createsuperuser), often with no tenant anywhere; on the app
connection RLS still limits it to the current tenant. Our own cross-tenant
reads (admin, commands, migrations) are spelled `.unscoped()` or
`all_tenants` so every use is greppable. The platform rules (staff only in
the platform tenant, the platform tenant never suspended) are tenants.rules';
clean() and save() call them. Models never import tenants.services: the
services stand on the models (service -> model -> full_clean()), not the reverse.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, TypeVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from tenants import platform_audit, rules
from tenants.context import NoTenantContext, current_tenant_id, require_tenant_id, tenant_context
from tenants.roles import Role


def normalize_slug(slug: str) -> str:
    """The one spelling of a tenant slug: lower case, no surrounding blanks.

    `HOOLI` beside `hooli` would be a look-alike in the staff UI (a phishing
    aid) and a login that answers the uniform 401; every way in (commands,
    admin, import, login) goes through here, and a CHECK constraint holds it
    in the database (migration 0015_i26_tenant_slug_lower_case).
    """
    return slug.strip().lower()


class Tenant(models.Model):
    class Tier(models.TextChoices):
        FREE = "free", "Free"
        STARTER = "starter", "Starter"
        PRO = "pro", "Pro"
        ENTERPRISE = "enterprise", "Enterprise"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    slug = models.SlugField(max_length=100, unique=True)
    subscription_tier = models.CharField(max_length=50, choices=Tier.choices, default=Tier.PRO)
    status = models.CharField(max_length=50, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "tenants"
        ordering = ["name"]
        indexes = [models.Index(fields=["status"], name="idx_tenants_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["active", "suspended"]),
                name="tenants_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(subscription_tier__in=["free", "starter", "pro", "enterprise"]),
                name="tenants_tier_valid",
            ),
            models.CheckConstraint(condition=Q(slug=Lower("slug")), name="tenants_slug_lower_case"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    # The status rule lives in tenants.rules; forms (clean) and every save call it.
    def clean(self) -> None:
        # Before the form's unique check, so `HOOLI` is refused beside `hooli`.
        self.slug = normalize_slug(self.slug or "")
        rules.check_status_allowed(self, self.status)
        rules.check_platform_identity(self)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.slug = normalize_slug(self.slug or "")
        rules.check_platform_not_suspended(self, self.status)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "slug" in update_fields:
            rules.check_platform_identity(self, using=kwargs.get("using"))
        super().save(*args, **kwargs)


class CrossTenantWrite(RuntimeError):
    """A row of one tenant was saved while running as another."""


_M = TypeVar("_M", bound=models.Model)


class TenantManager(models.Manager[_M]):
    """Rows of the current tenant only; raises NoTenantContext outside one."""

    def get_queryset(self) -> models.QuerySet[_M]:
        return super().get_queryset().filter(tenant_id=require_tenant_id())

    def none(self) -> models.QuerySet[_M]:
        """An empty queryset that needs no tenant: safe as a class-level declaration."""
        return super().get_queryset().none()

    def unscoped(self) -> models.QuerySet[_M]:
        """Every tenant's rows (as far as RLS lets this connection see).

        For platform work only: the admin, management commands, migrations.
        """
        return super().get_queryset()


def tenant_indexes(short_name: str, *, by_created: bool = True) -> list[models.Index]:
    """The seed's index names, idx_<name>_tenant_id and idx_<name>_tenant_created.

    `short_name` is the table name, abbreviated where Django's 30-character
    index-name limit requires it (idx_snapshots_..., not idx_portfolio_snapshots_...).
    """
    indexes = [models.Index(fields=["tenant"], name=f"idx_{short_name}_tenant_id")]
    if by_created:
        indexes.append(
            models.Index(
                fields=["tenant", "-created_at"],
                name=f"idx_{short_name}_tenant_created",
            )
        )
    return indexes


class TenantModel(models.Model):
    """A row that belongs to exactly one tenant.

    The database constraint is `tenant_id uuid NOT NULL REFERENCES tenants(id)
    ON DELETE CASCADE`, written by tenants.catalog.retrofit_operations (Django 5.2 cannot say
    ON DELETE CASCADE in the database), hence db_constraint=False here.
    """

    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="+",
        editable=False,
    )

    # Declared first, so it is the model's default manager: the one Django and
    # libraries use internally, often at import time with no tenant anywhere
    # (django-filter, the admin, model validation). It adds no filter; on the
    # app connection RLS still limits it to the current tenant. Our own code
    # uses `objects`, which filters by tenant and fails closed without one.
    all_tenants: ClassVar[models.Manager[Any]] = models.Manager()
    objects: ClassVar[TenantManager[Any]] = TenantManager()

    # True for a table the app role may only INSERT into and SELECT from
    # (tenants.catalog.privileges expects exactly that): a record of history.
    append_only: ClassVar[bool] = False
    # True for a table whose rows are ended, never deleted (sessions, API keys):
    # the app role may SELECT, INSERT and UPDATE it, not DELETE.
    never_deleted: ClassVar[bool] = False

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        running_as = current_tenant_id()
        if self.tenant_id is None:
            if running_as is None:
                raise NoTenantContext()
            self.tenant_id = running_as
        elif running_as is not None and self.tenant_id != running_as:
            raise CrossTenantWrite(
                f"Refusing to save a row of tenant {self.tenant_id} while running as tenant {running_as}."
            )
        super().save(*args, **kwargs)

    # Django writes an existing row's UPDATE and DELETE, and refresh_from_db's
    # SELECT, by primary key alone. On a Citus coordinator a statement without
    # `tenant_id = X` goes to every shard (and FOR UPDATE without it is
    # refused); with it, it routes to the one worker that holds the tenant.
    # On PostgreSQL the extra filter changes nothing: the row is the tenant's.

    def _do_update(self, base_qs, using, pk_val, values, update_fields, forced_update):
        by_tenant = base_qs.filter(tenant_id=self.tenant_id)
        # A row never changes tenant, so the UPDATE never sets tenant_id: with
        # server-side binding Citus cannot prove `SET tenant_id = $1` equal to
        # the routing `WHERE tenant_id = $2` and refuses the statement
        # ("modifying the partition value of rows is not allowed").
        values = [value for value in values if value[0].attname != "tenant_id"]
        return super()._do_update(by_tenant, using, pk_val, values, update_fields, forced_update)

    def delete(self, using=None, keep_parents=False):
        """Delete this row by (tenant_id, pk).

        A row that nothing depends on (no cascade, no protect, no signal) goes
        in one `DELETE ... WHERE tenant_id = X AND id = Y`; otherwise Django's
        collector runs as usual, from a queryset that names the tenant.
        """
        if self.pk is None:
            return super().delete(using=using, keep_parents=keep_parents)  # Django's own ValueError
        using = using or router.db_for_write(self.__class__, instance=self)
        rows = type(self)._base_manager.db_manager(using).filter(tenant_id=self.tenant_id, pk=self.pk)
        deleted = rows.delete()
        setattr(self, self._meta.pk.attname, None)  # as Model.delete() leaves it
        return deleted

    delete.alters_data = True  # type: ignore[attr-defined]

    def refresh_from_db(self, using=None, fields=None, from_queryset=None):
        # From __dict__: reading a deferred tenant_id would itself call refresh_from_db.
        tenant_id = self.__dict__.get("tenant_id")
        if from_queryset is None and tenant_id is not None:
            manager = type(self)._base_manager.db_manager(using, hints={"instance": self})
            from_queryset = manager.filter(tenant_id=tenant_id)
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)


class UserManager(BaseUserManager["User"], TenantManager["User"]):  # type: ignore[misc]
    """`objects`: the current tenant's users; create_user makes one in that tenant."""

    def create_user(self, username: str, password: str | None = None, **extra: Any) -> User:
        user = self.model(username=username, **extra)
        user.set_password(password)
        user.save()
        return user


class PlatformUserManager(BaseUserManager["User"]):
    """`all_tenants`, the unscoped default manager Django's own code uses.

    create_user is the one place a user row is built, checked and saved:
    tenants.services.user_create calls it (after validating the password) and so
    does Django's createsuperuser, whose account is made in the platform tenant.
    The model holds what every new user must satisfy (full_clean: the field
    validators and the staff rule; the username unique within its tenant), and
    a new staff account is recorded in the audit trail in the same transaction.
    """

    def create_user(self, username: str, email: str = "", password: str | None = None, **extra: Any) -> User:
        using = self.db
        tenant = extra.pop("tenant", None) or Tenant.objects.using(using).get(slug=settings.PLATFORM_TENANT_SLUG)
        by = extra.pop("by", None)
        is_superuser = extra.pop("is_superuser", False)
        user = self.model(
            tenant=tenant,
            username=username,
            email=email or "",
            is_staff=extra.pop("is_staff", False) or is_superuser,
            is_superuser=is_superuser,
            **extra,
        )
        # Uniqueness is checked below, inside the tenant; the tenant is set, not a form field.
        user.full_clean(exclude=["password", "tenant"], validate_unique=False, validate_constraints=False)
        user.set_password(password)
        with transaction.atomic(using=using), tenant_context(tenant, using=using):
            self.check_username_free(tenant, username)
            user.save(using=using)
            if user.is_staff:
                detail = {"user": username, "is_staff": user.is_staff, "is_superuser": user.is_superuser}
                platform_audit.record("user.staff", tenant=tenant, detail=detail, by=by, alias=using)
        return user

    def create_superuser(self, username: str, email: str = "", password: str | None = None, **extra: Any) -> User:
        return self.create_user(username, email, password, is_staff=True, is_superuser=True, **extra)

    def check_username_free(self, tenant: Tenant, username: str) -> None:
        """Usernames are unique within a tenant only (a global index would leak other tenants' names)."""
        if self.filter(tenant=tenant, username=username).exists():
            raise ValidationError(
                {"username": f"Tenant '{tenant.slug}' already has a user '{username}'."}, code="unique"
            )


class User(AbstractBaseUser, TenantModel):
    """A person who logs in: unique by username within a tenant, not globally.

    A global unique index would let tenant A learn which usernames exist in
    tenant B (through the conflict), so the key is (tenant, username).
    Platform staff are users of the platform tenant with is_staff set.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    username = models.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = models.EmailField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    is_superuser = models.BooleanField(default=False)
    # What the user may do inside the tenant (tenants.access). The database
    # default covers rows inserted by SQL that predates roles.
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.TRADER, db_default=Role.TRADER)
    created_at = models.DateTimeField(default=timezone.now)

    # As in TenantModel: the unscoped manager first (Django's default), then ours.
    all_tenants: ClassVar[PlatformUserManager] = PlatformUserManager()  # type: ignore[assignment]
    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    USERNAME_FIELD = "username"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        db_table = "users"
        ordering = ["username"]
        indexes = tenant_indexes("users", by_created=False)
        constraints = [
            models.UniqueConstraint(fields=["tenant", "username"], name="users_tenant_username_uniq"),
            # The target of every composite (tenant_id, user_id) foreign key.
            models.UniqueConstraint(fields=["tenant", "id"], name="users_tenant_id_id_uniq"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="users_role_valid"),
        ]

    def __str__(self) -> str:
        return self.username

    # The staff rule lives in tenants.rules; forms (clean) and every save call it.
    def clean(self) -> None:
        if self.tenant_id is not None:
            rules.check_staff_allowed(self._tenant(), is_staff=self.is_staff, is_superuser=self.is_superuser)

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        touches_staff = update_fields is None or {"is_staff", "is_superuser"} & set(update_fields)
        if (self.is_staff or self.is_superuser) and touches_staff and self.tenant_id is not None:
            rules.check_staff_allowed(
                self._tenant(kwargs.get("using")), is_staff=self.is_staff, is_superuser=self.is_superuser
            )
        super().save(*args, **kwargs)

    def _tenant(self, using: str | None = None) -> Tenant:
        if User.tenant.is_cached(self):  # type: ignore[attr-defined]
            return self.tenant
        return Tenant.objects.using(using or self._state.db or router.db_for_read(Tenant)).get(pk=self.tenant_id)

    # The admin is for platform staff; there are no per-model permissions.
    def has_perm(self, perm: str, obj: object = None) -> bool:
        return self.is_active and self.is_staff

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_active and self.is_staff


class AppendOnly(RuntimeError):
    """A tenant audit event was about to be changed or deleted: history is written once."""


class TenantAuditEvent(TenantModel):
    """One thing that happened inside a tenant, for the tenant's own admins.

    Written only by tenants.tenant_audit.record_event, in the transaction of
    the change it records; read by GET /api/audit-events/. The app role may
    only INSERT and SELECT (tenants 0014 grants exactly that), so no request
    path can rewrite history; save() and delete() refuse too, so the ORM
    says so before the database does. `actor` is a label, not a key: a
    user's id as text, `api_key:<id>` or `system`; events outlive users.
    """

    append_only = True

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    action = models.CharField(max_length=64)
    actor = models.CharField(max_length=128)
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "audit_events"
        ordering = ["-created_at", "-id"]
        indexes = tenant_indexes("audit")
        verbose_name = "tenant audit event"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target_type} {self.target_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly(f"Tenant audit event {self.pk} is history: it cannot be changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, using=None, keep_parents=False):
        raise AppendOnly(f"Tenant audit event {self.pk} is history: it cannot be deleted.")

    delete.alters_data = True  # type: ignore[attr-defined]


class IdempotencyKey(TenantModel):
    """The first answer to a POST sent with an `Idempotency-Key` header, kept 24 hours.

    Written and read only by tenants.http.idempotency: claimed (inserted) in the
    request's opening round trip, filled with the answer's status and body in
    the request's own transaction, so an answer is never lost between the write
    and its record. One row per (tenant, principal, key).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    principal = models.CharField(max_length=64)  # tenants.http.idempotency.principal_of
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # sha256 of method, path and body
    status_code = models.PositiveSmallIntegerField(null=True)
    body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "idempotency_keys"
        ordering = ["-created_at"]
        indexes = tenant_indexes("idempotency")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "principal", "key"], name="idempotency_keys_principal_key_uniq")
        ]


class UserSession(TenantModel):
    """One login of a user: its tokens carry this row's id (claim `sid`).

    The request's opening round trip reads it with the tenant and user rows
    (tenants.http.middleware): an ended session refuses its access and
    refresh tokens from the next request. Rows are ended, never deleted
    (the app role may not DELETE them); `refresh_jti` is the one refresh
    token of the session that may still be used (tenants.sessions).
    """

    never_deleted = True

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        db_constraint=False,  # the composite (tenant_id, user_id) key is the real constraint
        db_index=False,  # (tenant_id, user_id) is indexed
        related_name="+",
        editable=False,
    )
    refresh_jti = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        db_table = "user_sessions"
        ordering = ["-created_at"]
        indexes = [
            *tenant_indexes("sessions", by_created=False),
            models.Index(fields=["tenant", "user"], name="idx_sessions_tenant_user"),
        ]
        verbose_name = "user session"

    def __str__(self) -> str:
        return f"session {self.pk} of user {self.user_id}"


class ApiKey(TenantModel):
    """A machine client's key: acts as `user`, within `scopes` (tenants.access.Scope).

    The key itself is shown once, at creation, and stored only as an HMAC
    (tenants.api_keys); `prefix` is its visible, unique-per-tenant part.
    Revoked keys stay (revoked_at set): the audit log names them as actors.
    """

    never_deleted = True

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        db_constraint=False,  # the composite (tenant_id, user_id) key is the real constraint
        db_index=False,  # (tenant_id, user_id) is indexed
        related_name="+",
        editable=False,
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    hashed_secret = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_keys"
        ordering = ["-created_at"]
        indexes = [
            *tenant_indexes("api_keys", by_created=False),
            models.Index(fields=["tenant", "user"], name="idx_api_keys_tenant_user"),
        ]
        constraints = [models.UniqueConstraint(fields=["tenant", "prefix"], name="api_keys_tenant_prefix_uniq")]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"
