from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Background jobs"

    def ready(self) -> None:
        # Connects the publish and run signal handlers (header signing, leak guard).
        from jobs import tenant_tasks  # noqa: F401
