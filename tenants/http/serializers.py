"""The user resource as the API shows and takes it: never the password or its hash,
always the caller's tenant (the view's queryset is the scoped manager, under RLS).

The write serializers only shape input; the rules (roles, seats, the last
admin, password validators) are tenants.services'. A body that names a field
these do not take (`tenant_id`, `is_staff`, `is_superuser`, `password` on a
change...) is a 400 naming it: nothing is silently dropped, nothing applied.
"""

from rest_framework import serializers

from tenants.api_keys import visible_prefix
from tenants.models import ApiKey, TenantAuditEvent, User
from tenants.roles import Role


class UserSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "tenant_id", "username", "email", "role", "is_active", "created_at"]
        read_only_fields = fields


class StrictInputSerializer(serializers.Serializer):
    """Refuses fields it does not declare (400), instead of DRF's silent ignoring."""

    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {field: "This field cannot be set here." for field in unknown}, code="unknown_field"
            )
        return attrs


class UserCreateSerializer(StrictInputSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, write_only=True, style={"input_type": "password"})
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.TRADER)


class UserChangeSerializer(StrictInputSerializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)
    email = serializers.EmailField(required=False, allow_blank=True)


class PasswordChangeSerializer(StrictInputSerializer):
    old_password = serializers.CharField(max_length=4096, write_only=True, style={"input_type": "password"})
    new_password = serializers.CharField(max_length=4096, write_only=True, style={"input_type": "password"})


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = TenantAuditEvent
        fields = ["id", "action", "actor", "target_type", "target_id", "details", "created_at"]
        read_only_fields = fields


class LogoutSerializer(StrictInputSerializer):
    refresh = serializers.CharField(max_length=4096, write_only=True)


class NoInputSerializer(StrictInputSerializer):
    """A route that takes no body (a field sent is a 400)."""


class ApiKeySerializer(serializers.ModelSerializer):
    # The visible part of the key, `ap_<tenant>_<prefix>`: what a log or a paste shows.
    prefix = serializers.SerializerMethodField()
    user_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "expires_at", "created_at", "last_used_at", "revoked_at", "user_id"]
        read_only_fields = fields

    def get_prefix(self, key: ApiKey) -> str:
        return visible_prefix(key.tenant_id, key.prefix)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself: shown in this answer only, never again.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=100)
    # Checked against the scopes and the caller's role by tenants.api_keys (400 naming the scope).
    scopes = serializers.ListField(child=serializers.CharField(max_length=32), allow_empty=False, max_length=16)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
