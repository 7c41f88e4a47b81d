"""The tenants app: registers the runtime-role system check and the OpenAPI bearer scheme on start-up."""

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenants import checks, drift, schema  # noqa: F401  (registers the role and drift checks, the OpenAPI scheme)
