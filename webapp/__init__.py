"""Parley's Django project. The Celery app is loaded with Django, so that tasks sent from
the web process use its configuration (the broker from REDIS_URL)."""

from webapp.celery import app as celery_app

__all__ = ["celery_app"]
