"""A long scan on a real reading worker: OCR's progress counts pages, the owner's Cancel
stops the reading within a page, and the time limit fails the job saying why.

The scan is 300 small page images rendered by Pillow; neither test waits for all of them."""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Callable, Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.processes import process_env
from tests.waiting import wait_for
from tests.webapp.documents.files import render_text_image
from tests.webapp.jobs.workers import start_celery, stop_celery
from webapp.accounts.models import User
from webapp.documents.models import Document, Passage
from webapp.documents.reading import CANCELLED_REASON
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = 300


@pytest.fixture(scope="module")
def long_scan() -> bytes:
    images = [render_text_image([f"Ledger page {number}"], width=360, size=24) for number in range(1, PAGES + 1)]
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", save_all=True, append_images=images[1:], resolution=150)
    return buffer.getvalue()


@pytest.fixture
def reading_worker() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> subprocess.Popen[bytes]:
        started.append(start_celery(process_env(**env), queues="reading"))
        return started[-1]

    yield start
    for worker in started:
        stop_celery(worker)


def upload(client: Client, user: User, name: str, data: bytes) -> tuple[Document, Job]:
    client.post(reverse("documents:upload"), {"files": [SimpleUploadedFile(name, data)]})
    document = Document.objects.get(owner=user, name=name)
    return document, Job.objects.get(document=document)


def job_when(job: Job, condition: Callable[[Job], bool], what: str, timeout: float = 120) -> Job:
    def check() -> Job | None:
        job.refresh_from_db()
        return job if condition(job) else None

    return wait_for(check, timeout, what)


def test_cancelling_a_long_scan_stops_within_a_page_and_says_the_document_was_not_read(
    reading_worker: Callable[..., subprocess.Popen[bytes]], logged_in_client: Client, user: User, long_scan: bytes
) -> None:
    reading_worker()
    document, job = upload(logged_in_client, user, "ledger.pdf", long_scan)
    job = job_when(job, lambda j: j.unit == Job.OCR_PAGES and j.done >= 3, "three pages read by OCR")
    assert job.total == PAGES
    page = logged_in_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    assert re.search(rf"Reading page images by OCR: \d+ of {PAGES} pages", page)
    assert "Cancel reading" in page

    logged_in_client.post(reverse("documents:cancel", args=[job.pk]))
    job.refresh_from_db()
    read_when_cancelled = job.done
    assert job.state == "cancelled"
    # the worker lets go of the scan within a page: a short file queued after it is read,
    # and by then the scan has not gone on past the page it was on (the pages counted,
    # not the clock, show it: embedding the note may take a while on a loaded machine)
    _, after = upload(logged_in_client, user, "note.txt", b"Read right after the cancel.")
    job_when(after, lambda j: j.state == "done", "the next upload to be read")
    job.refresh_from_db()
    document.refresh_from_db()
    assert job.done <= read_when_cancelled + 1
    assert job.done < PAGES
    assert (document.status, document.error, document.text) == ("failed", CANCELLED_REASON, "")
    assert not Passage.objects.filter(document=document).exists()
    shown = logged_in_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    assert "Reading was cancelled before the text was read" in shown
    assert "Cancel reading" not in shown


def test_a_scan_that_takes_longer_than_the_ocr_time_limit_fails_saying_how_far_it_got(
    reading_worker: Callable[..., subprocess.Popen[bytes]], logged_in_client: Client, user: User, long_scan: bytes
) -> None:
    reading_worker(PARLEY_OCR_TIME_LIMIT_SECONDS="3")
    document, job = upload(logged_in_client, user, "ledger.pdf", long_scan)
    job = job_when(job, lambda j: j.state in Job.FINISHED, "the time limit to stop the reading")
    assert job.state == "failed"
    assert f"of {PAGES} page images in the 3 seconds a document may take, so it was stopped" in job.error
    assert "PARLEY_OCR_TIME_LIMIT_SECONDS" in job.error
    document.refresh_from_db()
    assert (document.status, document.text) == ("failed", "")
    assert document.error == job.error
    assert not Passage.objects.filter(document=document).exists()
    shown = logged_in_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    assert "in the 3 seconds a document may take" in shown
