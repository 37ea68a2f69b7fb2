"""Celery tasks of sentiment batches: each takes a job id and hands the claimed job to a service."""

from __future__ import annotations

from celery import shared_task

from webapp.jobs.models import Job
from webapp.jobs.services import job_claimed
from webapp.jobs.tasks import RETRY_TRANSIENT, TASK_OF_KIND
from webapp.sentiment.services import batch_classify


@shared_task(name=TASK_OF_KIND[Job.Kind.SENTIMENT], **RETRY_TRANSIENT)
def classify_batch(job_id: int) -> None:
    """Turn the batch's source into items (once), then label every unlabelled one, in rounds."""
    with job_claimed(job_id=job_id) as job:
        if job is None:  # gone, finished, or another worker has it
            return
        batch_classify(job=job)
