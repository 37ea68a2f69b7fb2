"""Reads of jobs. A user's job is fetched scoped to its owner."""

from __future__ import annotations

from django.http import Http404

from webapp.accounts.models import User
from webapp.jobs.models import Job


def job_get(*, user: User, job_id: object) -> Job:
    try:
        return Job.objects.get(pk=int(str(job_id)), owner=user)
    except (Job.DoesNotExist, ValueError):
        raise Http404("No such job.") from None


def job_cancelled(*, job_id: int) -> bool:
    """Whether the owner cancelled it: a worker asks before each step."""
    return Job.objects.filter(pk=job_id, state=Job.State.CANCELLED).exists()


def orphan_candidates() -> list[tuple[int, str]]:
    """(id, kind) of every job not finished; the ones no worker holds are orphans."""
    return list(Job.objects.filter(state__in=(Job.State.QUEUED, Job.State.RUNNING)).values_list("pk", "kind"))
