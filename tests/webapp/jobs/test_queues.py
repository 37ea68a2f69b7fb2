"""Each kind of job waits in its own Celery queue, and within a queue users take turns."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.waiting import wait_for
from tests.webapp.jobs.workers import start_celery, stop_celery
from webapp.accounts.models import User
from webapp.celery import app
from webapp.documents.models import Document
from webapp.documents.tasks import extract_document, summarize_document
from webapp.jobs.models import Job
from webapp.jobs.services import job_claimed, job_finish
from webapp.jobs.tasks import requeue_orphaned_jobs
from webapp.sentiment import services as services_sentiment
from webapp.sentiment.models import SentimentItem
from webapp.sentiment.tasks import classify_batch

QUEUES = ("reading", "summaries", "sentiment", "celery")


@pytest.fixture
def broker() -> Iterator[Callable[[], dict[str, int]]]:
    """The messages waiting in each queue of the real broker, which starts empty."""
    with app.connection_for_write() as connection:
        client = connection.default_channel.client  # type: ignore[attr-defined]  # the Redis channel's
        client.delete(*QUEUES)

        def lengths() -> dict[str, int]:
            return {queue: int(client.llen(queue)) for queue in QUEUES}

        yield lengths
        client.delete(*QUEUES)


def test_each_kind_of_job_waits_in_its_own_queue(broker: Callable[[], dict[str, int]]) -> None:
    extract_document.delay(1)
    summarize_document.delay(2)
    summarize_document.delay(3)
    classify_batch.delay(4)
    assert broker() == {"reading": 1, "summaries": 2, "sentiment": 1, "celery": 0}


@pytest.mark.django_db
def test_jobs_sent_again_at_worker_start_go_to_their_own_queues(
    broker: Callable[[], dict[str, int]], make_user: Callable[..., User]
) -> None:
    owner = make_user()
    for kind in (Job.Kind.EXTRACT, Job.Kind.SUMMARY, Job.Kind.SUMMARY, Job.Kind.SENTIMENT):
        Job.objects.create(owner=owner, kind=kind)
    Job.objects.create(owner=owner, kind=Job.Kind.SUMMARY, state=Job.State.DONE)
    requeue_orphaned_jobs()
    assert broker() == {"reading": 1, "summaries": 2, "sentiment": 1, "celery": 0}


def _run_deliveries(messages: list[Job]) -> list[str]:
    """Deliver each job's message in the order sent, as one worker would; what ran, in order."""
    ran = []
    for message in messages:
        with job_claimed(job_id=message.pk) as job:
            if job is not None:
                ran.append(job.owner.email)
                job_finish(job=job)
    return ran


@pytest.mark.django_db
def test_another_users_job_runs_before_the_first_users_backlog_is_through(
    make_user: Callable[..., User],
) -> None:
    busy, other = make_user("busy@example.com"), make_user("other@example.com")
    backlog = [Job.objects.create(owner=busy, kind=Job.Kind.SUMMARY) for _ in range(6)]
    late = Job.objects.create(owner=other, kind=Job.Kind.SUMMARY)
    ran = _run_deliveries([*backlog, late])
    # the other user's one job runs second, not seventh; every job runs once
    assert ran == ["busy@example.com", "other@example.com", *["busy@example.com"] * 5]
    assert not Job.objects.exclude(state=Job.State.DONE).exists()


@pytest.mark.django_db
def test_a_second_worker_takes_the_user_with_nothing_running(make_user: Callable[..., User]) -> None:
    busy, other = make_user("busy@example.com"), make_user("other@example.com")
    backlog = [Job.objects.create(owner=busy, kind=Job.Kind.SENTIMENT) for _ in range(4)]
    late = Job.objects.create(owner=other, kind=Job.Kind.SENTIMENT)
    # job_claimed fails a job whose block raises, so what ran is noted here and asserted after
    ran = {}
    with job_claimed(job_id=backlog[0].pk) as first:
        ran["first"] = first.pk if first else None
        with job_claimed(job_id=backlog[1].pk) as second:  # a second worker, while the first works
            ran["second"] = second.pk if second else None
    # other kinds keep their own turns: a reading of the busy user is not held back
    reading = Job.objects.create(owner=busy, kind=Job.Kind.EXTRACT)
    with job_claimed(job_id=reading.pk) as third:
        ran["third"] = third.pk if third else None
    assert ran == {"first": backlog[0].pk, "second": late.pk, "third": reading.pk}
    assert not Job.objects.filter(state=Job.State.FAILED).exists()


@pytest.mark.django_db(transaction=True)
def test_a_reading_worker_reads_an_upload_while_a_summary_waits(
    broker: Callable[[], dict[str, int]], logged_in_client: Client, user: User
) -> None:
    summary_job = Job.objects.create(owner=user, kind=Job.Kind.SUMMARY)
    summarize_document.delay(summary_job.pk)  # nobody serves summaries here
    worker: subprocess.Popen[bytes] = start_celery(queues="reading")
    try:
        # the worker is up once its start has sent the waiting summary again; an upload
        # before then would be sent twice (by the upload and by the worker's start)
        wait_for(lambda: broker()["summaries"] == 2, 60, "the worker's start to send the summary again")
        note = SimpleUploadedFile("note.txt", b"A one-page note to read at once.")
        logged_in_client.post(reverse("documents:upload"), {"files": [note]})
        document = Document.objects.get(owner=user, name="note.txt")
        wait_for(
            lambda: Document.objects.filter(pk=document.pk, status=Document.Status.READY).exists(),
            60,
            "the upload to be read",
        )
    finally:
        stop_celery(worker)
    summary_job.refresh_from_db()
    assert summary_job.state == Job.State.QUEUED
    # its message, and the one the worker's start sent again, wait where summaries wait
    assert broker() == {"reading": 0, "summaries": 2, "sentiment": 0, "celery": 0}


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_starts_another_users_batch_before_the_first_users_backlog(
    broker: Callable[[], dict[str, int]], make_user: Callable[..., User]
) -> None:
    busy, other = make_user("busy@example.com"), make_user("other@example.com")
    texts = "\n".join(f"Review {n}: the service was fine and the food was good." for n in range(20)).encode()
    backlog = [services_sentiment.batch_create(busy, name="", data=texts, pasted=True) for _ in range(4)]
    late = services_sentiment.batch_create(other, name="", data=texts, pasted=True)
    worker = start_celery(queues="sentiment")
    try:
        wait_for(
            lambda: not Job.objects.filter(kind=Job.Kind.SENTIMENT).exclude(state=Job.State.DONE).exists(),
            120,
            "every batch to be classified",
        )
    finally:
        stop_celery(worker)
    started = list(
        Job.objects.filter(kind=Job.Kind.SENTIMENT).order_by("started_at").values_list("owner__email", flat=True)
    )
    # the worker took the messages in the order sent; the other user's batch ran second, not fifth
    assert started == ["busy@example.com", "other@example.com", *["busy@example.com"] * 3]
    assert {batch.pk for batch in backlog} | {late.pk} == set(
        SentimentItem.objects.filter(label__gt="").values_list("batch_id", flat=True)
    )
