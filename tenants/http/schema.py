"""OpenAPI (drf-spectacular): the bearer scheme for TenantJWTAuthentication.

Imported from TenantsConfig.ready() so the extension registers before any
schema is generated.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TenantJWTScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.http.auth.TenantJWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Access token from POST /api/auth/token/ ({tenant, username, password}). "
            "It carries the tenant_id every request runs as.",
        }
