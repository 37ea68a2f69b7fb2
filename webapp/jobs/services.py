"""Writes of a job's lifecycle: claim, progress, finish, fail and cancel.

A claim is a conditional UPDATE taken while holding a Postgres advisory lock on the job:
a second delivery of a job that is running elsewhere finds the lock held and does
nothing; a redelivery after the worker died (``acks_late`` with
``reject_on_worker_lost``) finds it free and takes the job over, counting attempts, so a
file that kills the worker fails after ``MAX_ATTEMPTS`` instead of looping. Every other
change is conditional on the state too (a finished job stays finished), and each is
published to the job's pages after it is saved.

A delivery runs the fairest waiting job of its kind, not necessarily its own
(``job_candidates``): the job whose owner has the fewest of that kind running and was
served longest ago, oldest first. One user's fifty summaries then take turns with another
user's one instead of all going first. Each job sends one message, so every waiting job
still gets a delivery; a message whose own job already ran takes the next fair one, or
finds nothing. A running job's own message (a redelivery after its worker died, a retry)
takes that job over as before.

A job's work runs inside ``job_claimed``: whatever it raises, other than the database
going away for a moment (``TRANSIENT``, which the task retries), fails the job with a
reason the page can show, while the job is still held, so no job stays ``running`` for a
worker start to take up again and fail the same way.

The apps whose jobs these are register what else a failure or a cancel changes with
``on_failure`` and ``on_cancel`` (a document whose reading failed or was cancelled says
so, in the same transaction), so this module knows nothing of them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from webapp.core import metrics
from webapp.core.locks import advisory_lock
from webapp.jobs.events import publish_job_progress
from webapp.jobs.models import Job

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
JOB_LOCK_CLASS = 7301  # advisory-lock namespace of jobs: (JOB_LOCK_CLASS, job id)
TRANSIENT = (OperationalError, InterfaceError)  # the database went away for a moment
FAIR_CANDIDATES = 10  # waiting jobs a delivery tries, fairest first, before giving up
ERROR_MESSAGE_CHARS = 300  # of an unexpected error's own message, in the reason shown

JobHandler = Callable[[Job, str], None]
_failure_handlers: dict[str, list[JobHandler]] = {}
_cancel_handlers: dict[str, list[JobHandler]] = {}


class JobQuotaExceeded(Exception):
    """The owner has as many jobs waiting or running as one person may; the message is for them."""


def job_quota_check(*, owner_id: int) -> None:
    """Refuse a new job when its owner already has PARLEY_QUOTA_ACTIVE_JOBS queued or running.

    Call it inside the transaction that creates the job: it locks the owner's row until
    that transaction ends (FOR NO KEY UPDATE, which rows that merely point at the user do
    not wait for), so two requests at once are counted one after the other.
    """
    get_user_model().objects.select_for_update(no_key=True).only("pk").get(pk=owner_id)
    limit = settings.PARLEY_QUOTA_ACTIVE_JOBS
    active = Job.objects.filter(owner_id=owner_id, state__in=(Job.State.QUEUED, Job.State.RUNNING)).count()
    if active >= limit:
        raise JobQuotaExceeded(
            f"You have {active} jobs waiting or running, and your quota is {limit} at once (documents being "
            "read, summaries and sentiment batches together). Wait for some to finish, or cancel one."
        )


def on_failure(kind: str, handler: JobHandler) -> None:
    """Run ``handler(job, reason)`` inside the transaction that fails a job of ``kind``."""
    if handler not in _failure_handlers.setdefault(kind, []):
        _failure_handlers[kind].append(handler)


def on_cancel(kind: str, handler: JobHandler) -> None:
    """Run ``handler(job, reason)`` inside the transaction that cancels a job of ``kind``."""
    if handler not in _cancel_handlers.setdefault(kind, []):
        _cancel_handlers[kind].append(handler)


@contextlib.contextmanager
def job_claimed(*, job_id: int) -> Iterator[Job | None]:
    """The job this delivery runs, claimed under its advisory lock for the block: the fairest
    waiting job of ``job_id``'s kind (``job_candidates``), or ``job_id`` itself when it is
    running and no worker holds it; None when there is nothing to do.

    An exception from the block fails the job with a reason naming it (Celery's soft time
    limit, with the limit), and goes no further; a ``TRANSIENT`` one is raised again for
    the task to retry.
    """
    for candidate in job_candidates(job_id=job_id):
        with advisory_lock(JOB_LOCK_CLASS, candidate) as locked:
            job = job_claim(job_id=candidate) if locked else None
            if job is None:  # another worker has it, or it finished meanwhile: the next one
                continue
            try:
                yield job
            except TRANSIENT:
                raise
            except SoftTimeLimitExceeded:
                job_fail_too_slow(job=job, doing=job.get_kind_display().capitalize())
            except Exception as error:
                logger.exception("job %s (%s) stopped on an unexpected error", job.pk, job.kind)
                job_fail(job=job, reason=unexpected_error_reason(job, error))
            return
    yield None


def job_candidates(*, job_id: int) -> list[int]:
    """The jobs a delivery of ``job_id`` may run, in the order to try them.

    A running job (its worker died, or its task retries) is its own only candidate: the
    lock says whether anyone still holds it. Otherwise the waiting jobs of its kind, their
    owners with the fewest of that kind running first, then the owner served longest ago
    (never served first), then the oldest job; ``job_id`` itself last when it waits too.
    """
    own = Job.objects.filter(pk=job_id).values_list("kind", "state").first()
    if own is None:
        return []
    kind, state = own
    if state == Job.State.RUNNING:
        return [job_id]
    of_owner = Job.objects.filter(owner=OuterRef("owner"), kind=kind)
    running = (
        of_owner.filter(state=Job.State.RUNNING).order_by().values("owner").annotate(count=Count("pk")).values("count")
    )
    last_started = of_owner.filter(started_at__isnull=False).order_by("-started_at").values("started_at")[:1]
    waiting = list(
        Job.objects.filter(kind=kind, state=Job.State.QUEUED)
        .annotate(owner_running=Coalesce(Subquery(running), Value(0)), owner_served=Subquery(last_started))
        .order_by("owner_running", F("owner_served").asc(nulls_first=True), "created_at", "pk")
        .values_list("pk", flat=True)[:FAIR_CANDIDATES]
    )
    if state == Job.State.QUEUED and job_id not in waiting:
        waiting.append(job_id)
    return waiting


def unexpected_error_reason(job: Job, error: BaseException) -> str:
    """What the page says of a job that stopped on an error nobody foresaw."""
    message = " ".join(str(error).split())
    if len(message) > ERROR_MESSAGE_CHARS:
        message = message[: ERROR_MESSAGE_CHARS - 1] + "…"
    what = type(error).__name__ + (f": {message}" if message else "")
    return f"{job.get_kind_display().capitalize()} stopped on an unexpected error ({what})."


def job_claim(*, job_id: int) -> Job | None:
    """Take a queued job, or a running one whose worker died; None when there is nothing to do.

    Call it holding the job's advisory lock (``job_claimed``): the lock tells a running
    job from an orphaned one.
    """
    taken = Job.objects.filter(pk=job_id).filter(Q(state=Job.State.QUEUED) | Q(state=Job.State.RUNNING))
    if not taken.filter(attempts__lt=MAX_ATTEMPTS).update(
        state=Job.State.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now()
    ):
        worn_out = taken.filter(attempts__gte=MAX_ATTEMPTS).first()
        if worn_out is not None:
            job_fail(
                job=worn_out, reason=f"This job stopped the worker {MAX_ATTEMPTS} times, so it was not tried again."
            )
        return None
    job = Job.objects.select_related("document").get(pk=job_id)
    publish_job_progress(job)
    return job


def job_progress(*, job: Job, done: int, total: int | None = None, unit: str | None = None) -> None:
    """Save how far the job is (and its new total and unit, when they change) and tell its pages."""
    job.done = done
    if total is not None:
        job.total = total
    if unit is not None:
        job.unit = unit
    Job.objects.filter(pk=job.pk).update(done=job.done, total=job.total, unit=job.unit)
    publish_job_progress(job)


def job_fail(*, job: Job, reason: str) -> None:
    # together: nobody sees a failed job next to, say, a document still waiting to be read
    with transaction.atomic():
        failed = (
            Job.objects.filter(pk=job.pk)
            .exclude(state__in=Job.FINISHED)
            .update(state=Job.State.FAILED, error=reason, finished_at=timezone.now())
        )
        if failed:
            for handler in _failure_handlers.get(job.kind, []):
                handler(job, reason)
    job.refresh_from_db()
    if failed:
        _count_ended(job)
    publish_job_progress(job)


def job_fail_too_slow(*, job: Job, doing: str) -> None:
    """Celery's soft time limit: the job fails with the reason; the hard limit is the backstop."""
    minutes = settings.CELERY_TASK_SOFT_TIME_LIMIT // 60
    job_fail(job=job, reason=f"{doing} took longer than {minutes} minutes, so it was stopped.")


def job_finish(*, job: Job) -> None:
    """Mark the job done; its pages hear of it once that is committed (at once outside a
    transaction), so a page that reloads on the news finds the results saved with it."""
    finished = Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(
        state=Job.State.DONE, done=job.total, finished_at=timezone.now()
    )
    job.refresh_from_db()
    if finished:
        _count_ended(job)
    transaction.on_commit(lambda: publish_job_progress(job))


def job_cancel(*, job: Job) -> bool:
    """Stop a queued or running job; the worker notices before its next step (``job_cancelled``)."""
    reason = "Cancelled."
    with transaction.atomic():
        cancelled = bool(
            Job.objects.filter(pk=job.pk, state__in=(Job.State.QUEUED, Job.State.RUNNING)).update(
                state=Job.State.CANCELLED, finished_at=timezone.now(), error=reason
            )
        )
        if cancelled:
            for handler in _cancel_handlers.get(job.kind, []):
                handler(job, reason)
    if cancelled:
        job.refresh_from_db()
        _count_ended(job)
        publish_job_progress(job)
    return cancelled


def _count_ended(job: Job) -> None:
    """A job that ended, as refreshed after its end, on the operators' metrics once that is
    committed; one cancelled before it started ran for no time and is left out."""
    if job.started_at is None or job.finished_at is None:
        return
    seconds = (job.finished_at - job.started_at).total_seconds()
    kind, outcome = job.kind, job.state
    transaction.on_commit(lambda: metrics.JOB_DURATION.labels(kind=kind, outcome=outcome).observe(seconds))
