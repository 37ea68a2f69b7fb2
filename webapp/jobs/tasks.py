"""What the job tasks of every app share: their names, their retries, and the orphans.

Each kind of job has one task, named by its Celery name in ``TASK_OF_KIND``
(``webapp/jobs/sending.py``); each task takes ``name=TASK_OF_KIND[kind]``.
A task retries only ``TRANSIENT`` errors, with backoff; everything else fails the job
(``webapp.jobs.services.job_claimed``).
At worker start, ``requeue_orphaned_jobs`` sends again the jobs that no worker holds,
each to its kind's queue (``CELERY_TASK_ROUTES`` routes every send by the task's name),
and ``webapp/jobs/steps.py`` sends those made while the broker was unreachable.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready
from django.db import connection

from webapp.core.locks import advisory_lock
from webapp.jobs.selectors import orphan_candidates
from webapp.jobs.sending import TASK_OF_KIND, job_send
from webapp.jobs.services import JOB_LOCK_CLASS, TRANSIENT

__all__ = ["RETRY_TRANSIENT", "TASK_OF_KIND", "requeue_orphaned_jobs"]

RETRY_TRANSIENT: dict[str, Any] = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 5,
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
                job_send(job_id=job_id, kind=kind)
    connection.close()
