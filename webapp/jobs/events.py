"""The job progress frame and the group it goes to; sent through ``webapp.core.events``.

Workers publish a ``JobProgressEvent`` on the job's group after every change of the row;
the job socket (``webapp.jobs.consumers``) forwards it to the page as a ``progress``
frame, and sends one of its own, from the saved row, when a page connects. The row holds
the truth: a dropped frame only delays the page until the next one.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from webapp.core.events import publish
from webapp.jobs.models import Job


class JobProgress(TypedDict):
    job: int
    kind: str
    state: str
    done: int
    total: int
    error: str
    eta_seconds: int | None  # from the pace so far; None until there is one
    text: str  # what the page shows, written by Job.progress_text


class JobProgressEvent(JobProgress):
    type: Literal["job.progress"]  # the consumer method that forwards it: job_progress


class JobProgressFrame(JobProgress):
    type: Literal["progress"]  # as the page receives it


def job_group(job_id: int) -> str:
    # The name it had in the documents app: workers still running that code during an
    # upgrade keep reaching the pages.
    return f"documents.job.{job_id}"


def job_progress(job: Job) -> JobProgress:
    return JobProgress(
        job=job.pk,
        kind=job.kind,
        state=job.state,
        done=job.done,
        total=job.total,
        error=job.error,
        eta_seconds=job.eta_seconds,
        text=job.progress_text,
    )


def job_progress_frame(job: Job) -> JobProgressFrame:
    return JobProgressFrame(type="progress", **job_progress(job))


def publish_job_progress(job: Job) -> None:
    """Tell the job's pages about its row as it is now (best effort, see core.events)."""
    publish(job_group(job.pk), JobProgressEvent(type="job.progress", **job_progress(job)))
