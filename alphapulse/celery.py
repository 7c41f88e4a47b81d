"""The Celery application: `celery -A alphapulse worker|beat`.

Configuration comes from Django's settings (the CELERY_* names); tasks live in
the `jobs` app, whose TenantTask carries the sender's tenant in the message
headers (docs/jobs.md).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alphapulse.settings")

app = Celery("alphapulse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
