"""OpenAPI (drf-spectacular): the two ways in of TenantJWTAuthentication, a bearer token or an API key.

Imported from TenantsConfig.ready() so the extension registers before any
schema is generated.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TenantJWTScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.http.auth.TenantJWTAuthentication"
    name = ["bearerAuth", "apiKeyAuth"]

    def get_security_requirement(self, auto_schema):
        # Either one (OR): a person's bearer token, or a machine client's API key.
        return [{"bearerAuth": []}, {"apiKeyAuth": []}]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "Access token from POST /api/auth/token/ ({tenant, username, password}). "
                "It carries the tenant_id every request runs as.",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "'Api-Key <key>', a key from POST /api/api-keys/: acts as its user within its scopes.",
            },
        ]
