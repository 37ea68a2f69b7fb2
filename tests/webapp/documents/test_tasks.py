"""Text extraction on Celery: a real worker on the real broker, and claims that hold."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from celery.worker import WorkController
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.waiting import wait_for
from tests.webapp.documents.files import make_pdf
from tests.webapp.jobs.workers import start_celery, stop_celery
from webapp.accounts.models import User
from webapp.documents.models import Document
from webapp.documents.reading import document_sentiment
from webapp.documents.tasks import extract_document
from webapp.jobs.models import Job
from webapp.jobs.services import JOB_LOCK_CLASS, MAX_ATTEMPTS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def celery_worker() -> Iterator[subprocess.Popen[bytes]]:
    worker = start_celery()
    yield worker
    stop_celery(worker)


def wait_until_read(document: Document, timeout: float = 60) -> Document:
    wait_for(
        lambda: Job.objects.filter(document=document, state__in=Job.FINISHED).exists(),
        timeout,
        f"{document.name} to be read",
    )
    document.refresh_from_db()
    return document


def job_of(document: Document) -> Job:
    return Job.objects.get(document=document)


def test_a_real_worker_reads_uploads_and_says_why_it_cannot(
    celery_worker: WorkController, logged_in_client: Client, user: User
) -> None:
    files = [
        SimpleUploadedFile("report.pdf", make_pdf(["Quarterly report.", "Revenue grew by nine percent."])),
        SimpleUploadedFile("scan.pdf", make_pdf(["", "", ""])),
        SimpleUploadedFile("notes.txt", "Grüße aus Köln".encode("utf-16")),
    ]
    logged_in_client.post(reverse("documents:upload"), {"files": files})
    report = wait_until_read(Document.objects.get(owner=user, name="report.pdf"))
    assert report.status == "ready"
    assert "Revenue grew by nine percent." in report.text
    assert (report.pages, report.words) == (2, 7)
    assert job_of(report).state == "done"
    assert report.sentiment["label"] in {"negative", "neutral", "positive"}
    assert report.sentiment["sentences"] == 1  # "Quarterly report." is too short to count
    scan = wait_until_read(Document.objects.get(owner=user, name="scan.pdf"))
    assert scan.status == "failed"
    assert "3 pages but no extractable text" in scan.error
    assert job_of(scan).state == "failed"
    notes = wait_until_read(Document.objects.get(owner=user, name="notes.txt"))
    assert notes.text == "Grüße aus Köln"
    found = logged_in_client.get(reverse("documents:index"), {"q": "revenue"}, HTTP_HX_REQUEST="true").content.decode()
    assert "report.pdf" in found
    assert "notes.txt" not in found


def _document_with_job(user: User, **job_fields: Any) -> tuple[Document, Job]:
    data = make_pdf(["Some text here."])
    document = Document.objects.create(
        owner=user, name="a.pdf", kind="pdf", size=len(data), sha256="d" * 64, original=data
    )
    return document, Job.objects.create(owner=user, kind="extract", document=document, total=1, **job_fields)


def advisory_lock_held(class_id: int, object_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s)",
            [class_id, object_id],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def test_a_second_delivery_while_the_first_runs_does_nothing(user: User) -> None:
    document, job = _document_with_job(user)
    params = {k: v for k, v in connection.get_connection_params().items() if k in ("dbname", "user", "host", "port")}
    with psycopg.connect(**params, autocommit=True) as other_worker:
        other_worker.execute("SELECT pg_advisory_lock(%s, %s)", [JOB_LOCK_CLASS, job.pk])
        extract_document.run(job.pk)
        job.refresh_from_db()
        assert (job.state, job.attempts) == ("queued", 0)
    # the lock goes with that connection, once its server process has ended
    wait_for(lambda: not advisory_lock_held(JOB_LOCK_CLASS, job.pk), timeout=10, what="the closed connection's lock")
    extract_document.run(job.pk)
    job.refresh_from_db()
    document.refresh_from_db()
    assert (job.state, job.attempts, document.status) == ("done", 1, "ready")
    extract_document.run(job.pk)  # a late duplicate of a finished job
    job.refresh_from_db()
    assert job.attempts == 1


def test_a_redelivered_job_whose_worker_died_is_taken_over(user: User) -> None:
    _, job = _document_with_job(user, state="running", attempts=1)
    extract_document.run(job.pk)
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("done", 2)


def test_a_job_that_keeps_killing_the_worker_fails_instead_of_looping(user: User) -> None:
    document, job = _document_with_job(user, state="running", attempts=MAX_ATTEMPTS)
    extract_document.run(job.pk)
    job.refresh_from_db()
    document.refresh_from_db()
    assert job.state == "failed"
    assert f"stopped the worker {MAX_ATTEMPTS} times" in job.error
    assert document.status == "failed"
    assert document.error == job.error


def test_a_documents_overall_sentiment_comes_from_its_sentences() -> None:
    angry = "I hate this product. It broke on the very first day. The support team was rude and useless."
    happy = "What a lovely little hotel. The staff were kind and helpful. We will certainly come back next year."
    assert document_sentiment(angry)["label"] == "negative"
    assert document_sentiment(happy)["label"] == "positive"
    assert document_sentiment("Hi.") == {}


def test_the_soft_time_limit_fails_the_job_with_a_reason(user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from celery.exceptions import SoftTimeLimitExceeded

    from webapp.documents import reading

    def too_slow(kind: str, data: bytes, **options: Any) -> Any:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(reading, "extract", too_slow)
    document, job = _document_with_job(user)
    extract_document.run(job.pk)
    job.refresh_from_db()
    document.refresh_from_db()
    assert job.state == "failed"
    assert "Reading the file took longer than 30 minutes" in job.error
    assert document.status == "failed"
