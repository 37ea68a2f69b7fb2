"""Reading an uploaded document, in a Celery worker: its text, pages, words, search
vector, overall sentiment and passages (``webapp.documents.passages``), saved together
when the text is read; the passages of an earlier reading are replaced in that transaction.

A file that cannot be read fails its job with the reason, and the document with it
(``document_reading_failed``, registered with the jobs app for reading jobs); so does
any other error a reader raises (``webapp.jobs.services.job_claimed``). A reading job
cancelled by its owner fails its document with a reason too
(``document_reading_cancelled``), and what a worker read in the meantime is not kept:
the text is saved only while the job still runs, in the transaction that finishes it.
"""

from __future__ import annotations

import time
from functools import cache
from typing import TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Left

from webapp.documents.extraction import ExtractionError, extract
from webapp.documents.models import Document
from webapp.documents.passages import passages_embedded, passages_replace
from webapp.jobs.models import Job
from webapp.jobs.selectors import job_cancelled
from webapp.jobs.services import job_fail, job_fail_too_slow, job_finish, job_progress
from webapp.sentiment import services as sentiment

if TYPE_CHECKING:
    from inference.ocr import PageReader

SEARCHED_CHARACTERS = 100_000
SENTIMENT_SENTENCES = 200


class _Cancelled(Exception):
    """The owner cancelled the reading between two pages or two batches of passages."""


class _OcrTooSlow(Exception):
    """OCR has read the document's page images for longer than it may."""


def ocr_too_slow_reason(*, done: int, total: int) -> str:
    limit = settings.PARLEY_OCR_TIME_LIMIT_SECONDS
    allowed = f"{limit // 60} minutes" if limit % 60 == 0 else f"{limit} seconds"
    return (
        f"OCR read {done} of {total} page images in the {allowed} a document may take, so it was stopped; "
        "split the scan into smaller files, or ask the operator to raise PARLEY_OCR_TIME_LIMIT_SECONDS."
    )


CANCELLED_REASON = "Reading was cancelled before the text was read; delete the document and upload it again to read it."


def document_read(*, job: Job) -> None:
    """Extract the job's document; the job is done, or failed with a reason to show."""
    document = job.document
    if document is None:
        return

    ocr_started: list[float] = []  # when OCR began, at the first call

    def on_ocr_page(done: int, total: int) -> None:
        # called before the first page and after each: a cancel or the limit stops the
        # reading within one page
        if job_cancelled(job_id=job.pk):
            raise _Cancelled
        ocr_started[:] = ocr_started or [time.monotonic()]
        if done < total and time.monotonic() - ocr_started[0] > settings.PARLEY_OCR_TIME_LIMIT_SECONDS:
            raise _OcrTooSlow(ocr_too_slow_reason(done=done, total=total))
        job_progress(job=job, done=done, total=total, unit=Job.OCR_PAGES)

    try:
        extracted = extract(
            document.kind,
            bytes(document.original),
            read_image=lambda image: page_reader().read(image),
            on_ocr_page=on_ocr_page,
        )
    except _Cancelled:
        return  # the cancel already failed the document with its reason
    except (ExtractionError, _OcrTooSlow) as error:
        job_fail(job=job, reason=str(error))
        return
    except SoftTimeLimitExceeded:
        job_fail_too_slow(job=job, doing="Reading the file")
        return
    sentiment = document_sentiment(extracted.text)

    def on_batch(done: int, total: int) -> None:
        if job_cancelled(job_id=job.pk):
            raise _Cancelled
        job_progress(job=job, done=done, total=total + 1, unit="")  # +1: saving the text with its passages

    try:
        passages = passages_embedded(extracted, on_batch=on_batch)
    except _Cancelled:
        return  # the cancel already failed the document with its reason
    except ExtractionError as error:
        job_fail(job=job, reason=str(error))
        return
    with transaction.atomic():
        # The job row's lock orders this against a cancel: a job cancelled meanwhile keeps
        # the document as the cancel left it.
        if not Job.objects.select_for_update().filter(pk=job.pk, state=Job.State.RUNNING).exists():
            return
        Document.objects.filter(pk=document.pk).update(
            text=extracted.text,
            pages=extracted.pages,
            words=extracted.words,
            ocr_pages=list(extracted.ocr_pages),
            ocr_engine=page_reader().label if extracted.ocr_pages else "",
            sentiment=sentiment,
            status=Document.Status.READY,
            error="",
        )
        # A second statement: within one UPDATE, "text" would still be the old, empty value.
        Document.objects.filter(pk=document.pk).update(
            search=SearchVector(Value(document.name), weight="A", config="simple")
            + SearchVector(Left("text", SEARCHED_CHARACTERS), weight="B", config="simple")
        )
        passages_replace(document_id=document.pk, passages=passages)
        job_finish(job=job)


def page_reader() -> PageReader:
    """The reader of the installation's OCR engine (``PARLEY_OCR_ENGINE``), its models
    loaded once per worker process, on the first page without text.

    Returned lazily: reading a document with a text layer never loads them.
    """
    return _loaded_reader(settings.PARLEY_OCR_ENGINE)


@cache
def _loaded_reader(engine: str) -> PageReader:
    from inference.ocr import load_reader

    return load_reader(engine)


def document_reading_failed(job: Job, reason: str) -> None:
    """A reading job failed: its document, still waiting to be read, fails with the same reason."""
    if job.document_id:
        Document.objects.filter(pk=job.document_id, status=Document.Status.PENDING).update(
            status=Document.Status.FAILED, error=reason
        )


def document_reading_cancelled(job: Job, reason: str) -> None:
    """A reading job was cancelled: its document, still waiting to be read, says it will not be."""
    if job.document_id:
        Document.objects.filter(pk=job.document_id, status=Document.Status.PENDING).update(
            status=Document.Status.FAILED, error=CANCELLED_REASON
        )


def document_sentiment(text: str) -> dict[str, object]:
    """The mean of the sentence probabilities, over up to SENTIMENT_SENTENCES spread through the text."""
    from inference.summarize import split_sentences

    sentences = [s for s in split_sentences(text) if len(s.split()) >= 3]
    if not sentences:
        return {}
    step = max(1, len(sentences) // SENTIMENT_SENTENCES)
    chosen = sentences[::step][:SENTIMENT_SENTENCES]
    results = [r for r in sentiment.classifier().classify(chosen) if r.probabilities]
    if not results:
        return {}
    labels = list(results[0].probabilities)
    mean = {label: sum(r.probabilities[label] for r in results) / len(results) for label in labels}
    label = max(mean, key=lambda name: mean[name])
    return {"label": label, "score": round(mean[label], 4), "probabilities": mean, "sentences": len(results)}
