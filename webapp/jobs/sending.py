"""Sending jobs to the Celery workers, and sending again what could not be sent.

A job's row is written first and its message sent when the row commits. The broker
(Redis) may be down at that moment: the upload or the request still succeeds, the job
stays queued with ``sent_at`` empty, and every worker looks for such jobs each
``PARLEY_JOB_RESEND_SECONDS`` and when its broker connection (re)starts, so the job is
sent once the broker is back. Sending a job twice is harmless (the claim turns the extra
delivery into nothing), but the conditional UPDATE on ``sent_at`` keeps two workers from
sending the same unsent job.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from celery import current_app
from django.db import transaction
from django.utils import timezone

from webapp.jobs.models import Job

logger = logging.getLogger(__name__)

# Each kind's task, by its Celery name; CELERY_TASK_ROUTES routes every send by this name.
# The names are those the tasks had when they all lived in webapp.documents.tasks, and
# stay so: messages already in the broker carry them.
TASK_OF_KIND: dict[str, str] = {
    Job.Kind.EXTRACT: "webapp.documents.tasks.extract_document",
    Job.Kind.SUMMARY: "webapp.documents.tasks.summarize_document",
    Job.Kind.SENTIMENT: "webapp.documents.tasks.classify_batch",
}

# A down broker is given about a second, not kombu's default retries: the request waits.
SEND_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.3, "interval_max": 0.5}
# A job younger than this may still be on its way from the request that made it.
UNSENT_AFTER = timedelta(seconds=5)


def _message(*, job_id: int, kind: str) -> None:
    current_app.send_task(TASK_OF_KIND[kind], args=(job_id,), retry=True, retry_policy=SEND_RETRY)


def job_send(*, job_id: int, kind: str) -> bool:
    """Send the job's message now; False (logged) when the broker cannot be reached."""
    try:
        _message(job_id=job_id, kind=kind)
    except Exception as error:  # kombu's OperationalError, redis' errors, a closed socket…
        logger.warning("could not send job %s to the workers (%s); it is sent when the broker is back", job_id, error)
        return False
    Job.objects.filter(pk=job_id).update(sent_at=timezone.now())
    return True


def job_send_on_commit(job: Job) -> None:
    """Send the job once the transaction that made it commits."""
    transaction.on_commit(partial(job_send, job_id=job.pk, kind=job.kind))


def jobs_send_unsent() -> int:
    """Send the queued jobs whose message never reached the broker; how many were sent."""
    sent = 0
    stale = timezone.now() - UNSENT_AFTER
    unsent = Job.objects.filter(state=Job.State.QUEUED, sent_at=None, created_at__lt=stale)
    for job_id, kind in unsent.values_list("pk", "kind"):
        # taken by this worker alone; given back if the broker is still away
        if not Job.objects.filter(pk=job_id, sent_at=None).update(sent_at=timezone.now()):
            continue
        try:
            _message(job_id=job_id, kind=kind)
        except Exception as error:
            Job.objects.filter(pk=job_id).update(sent_at=None)
            logger.warning("the broker is still unreachable (%s); unsent jobs wait", error)
            break
        sent += 1
    if sent:
        logger.info("sent %d jobs that were made while the broker was unreachable", sent)
    return sent
