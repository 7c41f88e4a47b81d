"""The API's token classes: simplejwt's, signed and verified with the key ring (tenants.signing_keys).

Every token of the API carries `tenant_id`, `user_id` and `sid` (its session,
tenants.sessions). Code that reads or makes tokens uses these classes, never
simplejwt's own (which know one key only).
"""

from __future__ import annotations

from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tenants.signing_keys import token_backend

TENANT_CLAIM = "tenant_id"
SESSION_CLAIM = "sid"


class ApiAccessToken(AccessToken):
    @property
    def token_backend(self) -> TokenBackend:
        return token_backend()


class ApiRefreshToken(RefreshToken):
    access_token_class = ApiAccessToken

    @property
    def token_backend(self) -> TokenBackend:
        return token_backend()
