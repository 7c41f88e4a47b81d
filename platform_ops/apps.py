"""Platform operations: the audit trail, tenant export/import/offboarding, metrics."""

from django.apps import AppConfig


class PlatformOpsConfig(AppConfig):
    name = "platform_ops"
    verbose_name = "Platform operations"

    def ready(self) -> None:
        from platform_ops import signals  # noqa: F401  (admin logins, us004 migrations -> audit trail)
        from platform_ops.offboarding import refuse_activation_while_offboarding
        from tenants.rules import register_activation_guard

        register_activation_guard(refuse_activation_while_offboarding)
