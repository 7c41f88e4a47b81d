# Loaded with Django, so @shared_task binds to this app in every process.
from alphapulse.celery import app as celery_app

__all__ = ["celery_app"]
