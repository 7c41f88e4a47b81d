from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Background jobs run as a tenant (jobs.tenant_tasks); Celery finds jobs/tasks.py by autodiscovery."""

    name = "jobs"
    verbose_name = "Background jobs"

    def ready(self) -> None:
        # Connects the task signals that count every job for /metrics.
        from jobs import metrics  # noqa: F401
