"""The platform staff's admin: tenants and their users.

Rules (staff only in the platform tenant, the platform tenant never
suspended) are tenants.rules', held by the models and the services: forms show
their refusals as errors, actions as messages. Every change goes through
tenants.services with the request's user as the actor, and the service records
it in the audit trail. Every admin request runs on the owner connection (tenants.database.routers), which holds
rls_bypass_role: staff see every tenant, the API never does. Querysets come from
`all_tenants`, Django's default manager, so no tenant context is needed here.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from tenants import api_keys, platform_audit, rules, services
from tenants.constants import OWNER_DATABASE
from tenants.context import tenant_context
from tenants.models import ApiKey, Tenant, User
from tenants.platform_audit import Actor
from tenants.read_only_admin import ReadOnlyModelAdmin
from tenants.roles import Role
from tenants.tenant_audit import SYSTEM_ACTOR, user_actor

admin.site.site_header = "AlphaPulse platform admin"
admin.site.site_title = "AlphaPulse admin"
admin.site.index_title = "Tenants, users and trading data"
# There is no public site to "view": the API lives under /api/.
admin.site.site_url = None
# Access is is_staff / is_superuser on platform users; groups are not used.
# tenants is listed before django.contrib.auth (its commands win), so load
# auth's admin here first: it registers Group, which we take away.
import_module("django.contrib.auth.admin")
admin.site.unregister(Group)
# Nothing is deleted from the admin: tenants are suspended, users deactivated
# (a delete would cascade through a firm's trading history).
admin.site.disable_action("delete_selected")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "subscription_tier", "status", "users_link", "created_at")
    list_filter = ("subscription_tier", "status")
    search_fields = ("name", "slug")
    ordering = ("name",)
    readonly_fields = ("id", "created_at", "updated_at")
    fields = ("id", "name", "slug", "subscription_tier", "status", "created_at", "updated_at")
    # platform_ops.admin adds its "Offboard" action here: tenants never imports platform_ops.
    actions: tuple[Any, ...] = ("suspend", "activate")

    def get_changelist_instance(self, request: HttpRequest):
        changelist = super().get_changelist_instance(request)
        # The page's user counts in one GROUP BY tenant_id. Not a correlated
        # sub-select per tenant row: on a Citus cluster `tenants` is a
        # reference table, and Citus refuses correlated sub-selects under one.
        page = list(changelist.result_list)
        counts = dict(
            User.all_tenants.filter(tenant_id__in=[tenant.pk for tenant in page])
            .order_by()
            .values_list("tenant_id")
            .annotate(n=Count("*"))
        )
        for tenant in page:
            tenant.user_count = counts.get(tenant.pk, 0)  # type: ignore[attr-defined]
        return changelist

    @admin.display(description="users")
    def users_link(self, tenant: Tenant) -> str:
        url = reverse("admin:tenants_user_changelist") + f"?tenant__id__exact={tenant.pk}"
        return format_html('<a href="{}">{}</a>', url, getattr(tenant, "user_count", 0))

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None):
        # The platform tenant's slug is its identity (tenants.rules.check_platform_identity).
        if obj is not None and rules.is_platform(obj):
            return (*self.readonly_fields, "slug")
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Tenant, form: forms.ModelForm, change: bool) -> None:
        by = Actor.of_request(request)
        if change:
            # Name and slug are saved here; the tier and the status through their services,
            # which record the change (the form put the new values on `obj`: start from the stored ones).
            tier, status = obj.subscription_tier, obj.status
            obj.subscription_tier = form.initial.get("subscription_tier", tier)
            obj.status = form.initial.get("status", status)
            super().save_model(request, obj, form, change)
            services.tenant_set_tier(obj, tier, by=by)
            services.tenant_set_status(obj, status, by=by)
            return
        created = services.tenant_create(slug=obj.slug, name=obj.name, tier=obj.subscription_tier, by=by)
        services.tenant_set_status(created, obj.status, by=by)
        # The admin goes on with `obj` (its log entry, the redirect): make it the saved row.
        obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at
        obj._state.adding, obj._state.db = False, created._state.db

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Tenant], status: str) -> int:
        # One tenant at a time through the service, so its rules (the platform
        # tenant is never suspended) hold here exactly as in the commands.
        changed = 0
        for tenant in queryset:
            try:
                changed += services.tenant_set_status(tenant, status, by=Actor.of_request(request))
            except ValidationError as exc:
                self.message_user(request, f"{tenant.slug}: {' '.join(exc.messages)} Left as it is.", messages.WARNING)
        return changed

    @admin.action(description="Suspend the selected tenants (their tokens stop working at once)")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        changed = self._set_status(request, queryset, Tenant.Status.SUSPENDED)
        self.message_user(request, f"Suspended {changed} tenant(s).", messages.SUCCESS)

    @admin.action(description="Activate the selected tenants")
    def activate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        changed = self._set_status(request, queryset, Tenant.Status.ACTIVE)
        self.message_user(request, f"Activated {changed} tenant(s).", messages.SUCCESS)


class OptionalRoleMixin:
    """A form that names no role keeps the user's (a new user: trader), as the API does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        if "role" in self.fields:  # type: ignore[attr-defined]
            self.fields["role"].required = False  # type: ignore[attr-defined]

    def clean_role(self) -> str:
        role = self.cleaned_data.get("role")  # type: ignore[attr-defined]
        return role or getattr(self.instance, "role", None) or Role.TRADER  # type: ignore[attr-defined]


class UserCreationForm(OptionalRoleMixin, forms.ModelForm):
    """New user of a chosen tenant, with a password (User.tenant is not editable on the model)."""

    tenant = forms.ModelChoiceField(queryset=Tenant.objects.order_by("name"))
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password (again)", widget=forms.PasswordInput, strip=False)

    class Meta:
        model = User
        fields = ("username", "email", "role", "is_active")

    def clean(self) -> dict[str, Any]:
        super().clean()  # ModelForm.clean() returns self.cleaned_data
        data = self.cleaned_data
        tenant, username = data.get("tenant"), data.get("username")
        if tenant and username:
            try:
                services.check_username_free(tenant, username)
            except ValidationError as exc:
                self.add_error(None, exc)
        password1, password2 = data.get("password1"), data.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords differ.")
        elif password1:
            try:
                validate_password(password1)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data

    def save(self, commit: bool = True) -> User:
        # UserAdmin.save_model creates it, through tenants.services.user_create.
        user = super().save(commit=False)
        user.tenant = self.cleaned_data["tenant"]
        return user


# Changed through tenants.services.user_change (its rules and its audit event).
USER_RULED_FIELDS = ("role", "is_active")


class UserChangeForm(OptionalRoleMixin, forms.ModelForm):
    new_password = forms.CharField(
        label="New password",
        widget=forms.PasswordInput,
        strip=False,
        required=False,
        help_text="Leave empty to keep the current password.",
    )

    class Meta:
        model = User
        fields = ("email", "role", "is_active", "is_staff", "is_superuser")

    def clean(self) -> dict[str, Any]:
        super().clean()
        # The tenant's own rules (the last active admin, the seats), as the users API applies them.
        changes = {
            f: self.cleaned_data[f] for f in USER_RULED_FIELDS if f in self.changed_data and f in self.cleaned_data
        }
        if changes:
            original = User.all_tenants.using(self.instance._state.db).get(pk=self.instance.pk)
            try:
                services.check_user_change(
                    original, changes, acting_user=None, using=self.instance._state.db or "owner"
                )
            except services.TenantConflict as exc:
                self.add_error(None, str(exc))
            except ValidationError as exc:
                self.add_error(None, exc)
        return self.cleaned_data

    def clean_new_password(self) -> str:
        password = self.cleaned_data["new_password"]
        if password:
            validate_password(password, self.instance)
        return password


def is_privileged(user: User) -> bool:
    return user.is_staff or user.is_superuser


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("username", "tenant", "email", "role", "is_active", "is_staff", "created_at")
    list_filter = ("tenant", "role", "is_active", "is_staff")
    search_fields = ("username", "email", "tenant__slug")
    list_select_related = ("tenant",)
    ordering = ("tenant__name", "username")
    actions = ("deactivate", "reactivate")

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        # Staff accounts (their passwords, their active flag) are a superuser's to
        # change; otherwise plain staff could reset a superuser's password.
        if obj is not None and is_privileged(obj) and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        # The same services as the commands: one way to create a user, set a password, change
        # its rights or its active flag, each recorded by the service with the request's user.
        by = Actor.of_request(request)
        if change:
            # The email is saved here; the rights, the role and the active flag through their
            # services (the form put the new values on `obj`: start from the stored ones).
            new = {field: getattr(obj, field) for field in ("is_active", "is_staff", "is_superuser", "role")}
            for field, value in new.items():
                setattr(obj, field, form.initial.get(field, value))
            super().save_model(request, obj, form, change)
            if form.cleaned_data.get("new_password"):
                services.user_set_password(obj, form.cleaned_data["new_password"])
            services.user_set_staff(obj, is_staff=new["is_staff"], is_superuser=new["is_superuser"], by=by)
            services.user_change(
                obj, {"role": new["role"]}, acting_user=None, actor=SYSTEM_ACTOR, using=obj._state.db or "owner"
            )
            services.user_set_active(obj, new["is_active"], by=by)
            return
        created = services.user_create(
            tenant=form.cleaned_data["tenant"],
            username=obj.username,
            password=form.cleaned_data["password1"],
            email=obj.email,
            role=obj.role,
            check_password=False,  # the form validated it, with its errors on the field
            by=by,
        )
        services.user_set_active(created, obj.is_active, by=by)
        # The admin goes on with `obj` (its log entry, the redirect): make it the saved row.
        obj.pk, obj.password, obj.created_at = created.pk, created.password, created.created_at
        obj._state.adding, obj._state.db = False, created._state.db

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = UserChangeForm if obj is not None else UserCreationForm
        # Only the model fields the form edits: `tenant` is not editable on the
        # model, so the creation form declares it itself.
        readonly = self.get_readonly_fields(request, obj)
        kwargs.update(form=form, fields=[f for f in form.Meta.fields if f not in readonly])
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: User | None = None):
        if obj is None:
            return [(None, {"fields": ("tenant", "username", "email", "role", "is_active", "password1", "password2")})]
        return [
            (None, {"fields": ("tenant", "username", "id", "created_at", "email", "new_password")}),
            ("Access", {"fields": ("role", "is_active", "is_staff", "is_superuser")}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None):
        if obj is None:
            return ()
        readonly = ["tenant", "username", "id", "created_at"]
        if not request.user.is_superuser:
            # Only superusers hand out (or take away) staff rights.
            readonly += ["is_staff", "is_superuser"]
        return readonly

    def _changeable(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        if request.user.is_superuser:
            return queryset
        privileged = queryset.filter(Q(is_staff=True) | Q(is_superuser=True))
        if privileged.exists():
            self.message_user(
                request, "Staff accounts are left as they are: only superusers change them.", messages.WARNING
            )
        return queryset.exclude(Q(is_staff=True) | Q(is_superuser=True))

    def _set_active(self, request: HttpRequest, queryset: QuerySet[User], active: bool) -> int:
        # One user at a time through the service, which records each change and keeps the
        # tenant's rules (its last active admin, its seats): a refused one is named, not fatal.
        by = Actor.of_request(request)
        changed = 0
        for user in self._changeable(request, queryset).filter(is_active=not active).select_related("tenant"):
            try:
                changed += services.user_set_active(user, active, by=by)
            except (services.TenantConflict, ValidationError) as exc:
                self.message_user(request, f"{user.username}@{user.tenant.slug}: {exc}", messages.ERROR)
        return changed

    @admin.action(description="Deactivate the selected users (their tokens stop working at once)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        changed = self._set_active(request, queryset, False)
        self.message_user(request, f"Deactivated {changed} user(s).", messages.SUCCESS)

    @admin.action(description="Reactivate the selected users")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        changed = self._set_active(request, queryset, True)
        self.message_user(request, f"Reactivated {changed} user(s).", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyModelAdmin):
    """Every tenant's API keys, for staff: seen (never their secret: only its HMAC is stored) and revoked.

    Keys are made by their users through the API (the key is shown to them
    once); staff cannot make one, change one, or delete one (a revoked key
    stays, the audit log names it). Revoking goes through tenants.api_keys, which
    records `api_key.revoked` in the tenant's log, and the platform trail says which staff did it.
    """

    # The user by id: on Citus a join of keys to users on user_id alone would need repartitioning.
    list_display = ("name", "visible_prefix", "tenant", "user_id", "scopes", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("tenant",)
    search_fields = ("prefix", "name")
    list_select_related = ("tenant",)
    exclude = ("hashed_secret",)
    actions = ("revoke",)

    @admin.display(description="prefix")
    def visible_prefix(self, key: ApiKey) -> str:
        return api_keys.visible_prefix(key.tenant_id, key.prefix)

    @admin.action(description="Revoke the selected API keys (refused from their next request)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        by = Actor.of_request(request)
        for key in queryset.filter(revoked_at__isnull=True).select_related("tenant"):
            with tenant_context(key.tenant_id, using=OWNER_DATABASE):
                revoked += api_keys.revoke_api_key(key, actor=user_actor(request.user), using=OWNER_DATABASE)
                platform_audit.record(
                    "api_key.revoke",
                    tenant=key.tenant,
                    detail={"api_key": str(key.pk), "name": key.name},
                    by=by,
                    alias=OWNER_DATABASE,
                )
        self.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)
