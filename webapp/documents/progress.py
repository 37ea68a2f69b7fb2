"""The one way job progress reaches pages: a typed event on the job's channel-layer group.

The job row holds the truth; this is only how a page hears about a change at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.utils import timezone

from webapp.core.events import publish
from webapp.documents.models import Job


@dataclass(frozen=True)
class JobProgress:
    job: int
    kind: str
    state: str
    done: int
    total: int
    error: str
    eta_seconds: int | None  # from the pace so far; None until there is one

    @classmethod
    def of(cls, job: Job) -> JobProgress:
        eta = None
        if job.state == Job.State.RUNNING and job.started_at and 0 < job.done < job.total:
            elapsed = (timezone.now() - job.started_at).total_seconds()
            eta = round(elapsed / job.done * (job.total - job.done))
        return cls(
            job=job.pk, kind=job.kind, state=job.state, done=job.done, total=job.total, error=job.error, eta_seconds=eta
        )


def publish_progress(job: Job) -> None:
    publish(job.group_name, {"type": "job.progress", **asdict(JobProgress.of(job))})
