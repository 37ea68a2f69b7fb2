"""Celery tasks of documents: each takes a job id, claims the job and hands it to a service.

The claim (``webapp.jobs.services.job_claimed``) runs the fairest waiting job of the
kind (users take turns), makes a second delivery of a running job a no-op and takes over
a job whose worker died. Reading and summaries wait in queues of their own
(``CELERY_TASK_ROUTES``).
The work itself is in ``reading`` and ``summaries``.
"""

from __future__ import annotations

from celery import shared_task

from webapp.documents.reading import document_read
from webapp.documents.summaries import summary_write
from webapp.jobs.models import Job
from webapp.jobs.services import job_claimed
from webapp.jobs.tasks import RETRY_TRANSIENT, TASK_OF_KIND


@shared_task(name=TASK_OF_KIND[Job.Kind.EXTRACT], **RETRY_TRANSIENT)
def extract_document(job_id: int) -> None:
    """Read an uploaded document's text, pages and words."""
    with job_claimed(job_id=job_id) as job:
        if job is None:  # gone, finished, or another worker has it
            return
        document_read(job=job)


@shared_task(name=TASK_OF_KIND[Job.Kind.SUMMARY], **RETRY_TRANSIENT)
def summarize_document(job_id: int) -> None:
    """Summarize a whole document, resuming from the chunks a crashed attempt finished."""
    with job_claimed(job_id=job_id) as job:
        if job is None:  # gone, finished, or another worker has it
            return
        summary_write(job=job)
