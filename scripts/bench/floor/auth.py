"""simplejwt's stock JWTAuthentication for the floor (its own module: DRF imports
authentication classes while loading its settings, so they must not import views)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.settings import api_settings

from tenants.models import User


class StockJWTAuthentication(JWTAuthentication):
    """simplejwt's JWTAuthentication, its user query unchanged (`SELECT ... FROM users
    WHERE id = $1`), made through the unscoped manager: the product's `User.objects`
    refuses to run without a tenant context, and this app has none."""

    def get_user(self, validated_token: Any) -> User:
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise AuthenticationFailed("Token contained no recognizable user identification") from exc
        try:
            user = User.all_tenants.get(**{api_settings.USER_ID_FIELD: user_id})
        except User.DoesNotExist as exc:
            raise AuthenticationFailed("User not found") from exc
        if not user.is_active:
            raise AuthenticationFailed("User is inactive")
        return user
