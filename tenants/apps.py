"""The tenants app: registers the runtime-role system check and the OpenAPI bearer scheme on start-up."""

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self) -> None:
        # Registers the role, privilege and drift checks and the OpenAPI scheme.
        from tenants.catalog import checks, drift, migration_notice  # noqa: F401
        from tenants.http import schema  # noqa: F401

        migration_notice.install()
