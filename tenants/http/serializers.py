"""The user resource as the API shows it: read-only, never the password, always the caller's tenant
(the view's queryset is the scoped manager, under RLS)."""

from rest_framework import serializers

from tenants.models import User


class UserSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "tenant_id", "username", "email", "role", "is_active", "created_at"]
        read_only_fields = fields
