"""What the job tasks of every app share: their names, their retries, and the orphans.

Each kind of job has one task, named here by its Celery name; each task takes
``name=TASK_OF_KIND[kind]``. The names are those the tasks had when they all lived in
``webapp.documents.tasks``, and stay so: messages already in the broker carry them.
A task retries only ``TRANSIENT`` errors, with backoff; everything else fails the job
(``webapp.jobs.services.job_claimed``).
At worker start, ``requeue_orphaned_jobs`` sends again the jobs that no worker holds,
each to its kind's queue (``CELERY_TASK_ROUTES`` routes every send by the task's name).
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from celery.signals import worker_ready
from django.db import connection

from webapp.core.locks import advisory_lock
from webapp.jobs.models import Job
from webapp.jobs.selectors import orphan_candidates
from webapp.jobs.services import JOB_LOCK_CLASS, TRANSIENT

RETRY_TRANSIENT: dict[str, Any] = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 5,
}
TASK_OF_KIND: dict[str, str] = {
    Job.Kind.EXTRACT: "webapp.documents.tasks.extract_document",
    Job.Kind.SUMMARY: "webapp.documents.tasks.summarize_document",
    Job.Kind.SENTIMENT: "webapp.documents.tasks.classify_batch",
}


@worker_ready.connect
def requeue_orphaned_jobs(**kwargs: Any) -> None:
    """At worker start, send again every unfinished job that no worker holds.

    A job whose worker was killed stays unacknowledged in the broker until its visibility
    timeout; this takes it up at once instead. Sending a job twice is harmless: the
    claim turns the extra delivery into nothing.
    """
    for job_id, kind in orphan_candidates():
        with advisory_lock(JOB_LOCK_CLASS, job_id) as free:
            if free:
                current_app.tasks[TASK_OF_KIND[kind]].delay(job_id)
    connection.close()
