"""Reading jobs whose reader raises: every error fails the job and its document, with a reason.

Each file is broken here, in the test (python-docx, zipfile, pypdf), uploaded through the
upload service and read by the real task function on the real database, as a worker
would; the job and the document are then what the owner's page shows. A cancelled
reading job leaves its document failed with a reason, never waiting to be read.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from tests.webapp.documents.files import make_docx
from webapp.documents import reading, services
from webapp.documents.models import Document
from webapp.documents.tasks import extract_document
from webapp.jobs.models import Job
from webapp.jobs.services import job_cancel, job_claimed
from webapp.sentiment import services as sentiment
from webapp.sentiment.models import SentimentBatch
from webapp.sentiment.tasks import classify_batch

pytestmark = pytest.mark.django_db

PARAGRAPHS = ["Minutes of the meeting.", "Action: buy more coffee."]


def rewritten(docx: bytes, member: str, change: Callable[[bytes], bytes], compression: int) -> bytes:
    """The Word document again, with one member's bytes changed and every member compressed so."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx)) as source, zipfile.ZipFile(out, "w", compression) as copy:
        for info in source.infolist():
            body = source.read(info.filename)
            copy.writestr(info.filename, change(body) if info.filename == member else body)
    return out.getvalue()


def docx_with_broken_xml() -> bytes:
    return rewritten(make_docx(PARAGRAPHS), "word/document.xml", lambda xml: xml[: len(xml) // 2], zipfile.ZIP_DEFLATED)


def docx_failing_its_crc() -> bytes:
    """Stored, not compressed, so a changed byte of text reaches the CRC check unharmed."""
    stored = rewritten(make_docx(PARAGRAPHS), "word/document.xml", lambda xml: xml, zipfile.ZIP_STORED)
    at = stored.index(b"buy more coffee")
    return stored[:at] + b"BUY" + stored[at + 3 :]


def pdf_with_content(content: bytes, *, compressed: bool = False) -> bytes:
    """A one-page PDF whose page draws ``content`` with a font, so pypdf reads every operator."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, StreamObject

    writer = PdfWriter()
    page = writer.add_blank_page(width=612, height=792)
    stream: StreamObject
    if compressed:
        stream = StreamObject()
        stream.set_data(zlib.compress(content, 9))
        stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    else:
        stream = DecodedStreamObject()
        stream.set_data(content)
    page[NameObject("/Contents")] = writer._add_object(stream)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


TEXT = b"BT /F1 12 Tf 72 720 Td (Quarterly report) Tj ET"


def uploaded(user: Any, name: str, data: bytes) -> tuple[Document, Job]:
    outcome = services.documents_upload(user, [SimpleUploadedFile(name, data)], [])
    assert not outcome.refused, outcome.refused
    (document,) = outcome.added
    return document, Job.objects.get(document=document, kind=Job.Kind.EXTRACT)


def read(document: Document, job: Job) -> tuple[Document, Job]:
    extract_document.run(job.pk)
    document.refresh_from_db()
    job.refresh_from_db()
    return document, job


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("broken-xml.docx", docx_with_broken_xml, "The Word document is damaged and could not be opened"),
        ("bad-crc.docx", docx_failing_its_crc, "Bad CRC-32 for file 'word/document.xml'"),
        (
            "deep.pdf",
            lambda: pdf_with_content(TEXT + b" " + b"[" * 5000 + b"]" * 5000),
            "nests its contents too deeply",
        ),
        (
            "bomb.pdf",
            lambda: pdf_with_content(TEXT + b" " * 80_000_000, compressed=True),
            "unpacks to more than a reader allows",
        ),
    ],
)
def test_a_file_that_breaks_its_reader_fails_the_job_and_the_document_with_the_reason(
    user: Any, logged_in_client: Client, name: str, make: Callable[[], bytes], reason: str
) -> None:
    document, job = read(*uploaded(user, name, make()))
    assert (job.state, document.status) == ("failed", "failed")
    assert reason in job.error
    assert document.error == job.error
    assert job.attempts == 1
    page = logged_in_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    assert "could not be read" in page
    assert reason.replace("'", "&#x27;") in page


def test_any_other_error_of_a_reader_fails_the_job_and_the_document_at_once(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_reader(kind: str, data: bytes, **options: Any) -> Any:
        raise RuntimeError("the reader fell over\nhalf way")

    monkeypatch.setattr(reading, "extract", broken_reader)
    document, job = read(*uploaded(user, "notes.txt", b"Some notes."))
    assert job.state == "failed"
    assert job.error == "Reading the text stopped on an unexpected error (RuntimeError: the reader fell over half way)."
    assert (document.status, document.error) == ("failed", job.error)
    extract_document.run(job.pk)  # a late redelivery finds the job finished
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("failed", 1)


def test_the_time_limit_anywhere_in_the_work_fails_the_job_with_the_limit(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery.exceptions import SoftTimeLimitExceeded

    def too_slow(text: str) -> Any:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(reading, "document_sentiment", too_slow)  # after the text was read
    document, job = read(*uploaded(user, "notes.txt", b"Some notes about the harbour."))
    assert job.error == "Reading the text took longer than 30 minutes, so it was stopped."
    assert (job.state, document.status, document.error) == ("failed", "failed", job.error)


def test_an_unexpected_error_fails_a_sentiment_job_too(user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_classifier() -> Any:
        raise MemoryError()

    monkeypatch.setattr(sentiment, "classifier", no_classifier)
    batch = sentiment.batch_create(user, name="", data=b"good\nbad\n", pasted=True)
    classify_batch.run(batch.job_id)
    job = SentimentBatch.objects.get(pk=batch.pk).job
    assert job is not None
    assert (job.state, job.error) == ("failed", "Classifying sentiment stopped on an unexpected error (MemoryError).")


def test_the_database_going_away_is_left_to_the_tasks_retry(user: Any) -> None:
    _, job = uploaded(user, "notes.txt", b"Some notes.")

    def work_while_the_database_goes_away() -> None:
        with job_claimed(job_id=job.pk) as claimed:
            assert claimed is not None
            raise OperationalError("server closed the connection unexpectedly")

    with pytest.raises(OperationalError):
        work_while_the_database_goes_away()
    job.refresh_from_db()
    assert (job.state, job.error) == ("running", "")


def test_cancelling_a_queued_reading_job_fails_its_document_with_a_reason(user: Any, logged_in_client: Client) -> None:
    document, job = uploaded(user, "notes.txt", b"Some notes.")
    logged_in_client.post(reverse("documents:cancel", args=[job.pk]))
    document, job = read(document, job)  # the queued message still reaches a worker
    assert job.state == "cancelled"
    assert document.status == "failed"
    assert document.error == reading.CANCELLED_REASON
    assert document.text == ""
    page = logged_in_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    assert "Reading was cancelled before the text was read" in page
    assert "The text is being read" not in page


def test_cancelling_while_the_file_is_read_keeps_nothing_of_it(user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real_extract = reading.extract

    def cancelled_meanwhile(kind: str, data: bytes, **options: Any) -> Any:
        assert job_cancel(job=Job.objects.get(pk=job.pk))  # the owner's Cancel, as the worker reads
        return real_extract(kind, data, **options)

    monkeypatch.setattr(reading, "extract", cancelled_meanwhile)
    document, job = uploaded(user, "notes.txt", b"Some notes about the harbour.")
    document, job = read(document, job)
    assert job.state == "cancelled"
    assert (document.status, document.error, document.text) == ("failed", reading.CANCELLED_REASON, "")
