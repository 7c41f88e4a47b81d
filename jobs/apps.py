from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Background jobs run as a tenant (jobs.tenant_tasks); Celery finds jobs/tasks.py by autodiscovery."""

    name = "jobs"
    verbose_name = "Background jobs"
