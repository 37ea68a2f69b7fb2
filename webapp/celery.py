"""The Celery application. Workers start with ``celery -A webapp.celery worker``.

Each app's ``tasks`` module is found by ``autodiscover_tasks``: jobs (the orphans sent
again at start), documents (reading, summaries) and sentiment (batches).
"""

from __future__ import annotations

import os

from celery import Celery

from webapp.jobs.steps import SendUnsentJobs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("parley")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# In every worker: send again the jobs made while the broker was unreachable.
app.steps["consumer"].add(SendUnsentJobs)
