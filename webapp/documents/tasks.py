"""Celery tasks. Each takes a job id and claims the job in Postgres before working.

A claim is a conditional update taken while holding a Postgres advisory lock on the
job: a second delivery of a job that is running elsewhere finds the lock held and does
nothing; a redelivery after the worker died (``acks_late`` with
``reject_on_worker_lost``) finds it free and takes the job over, counting attempts, so
a file that kills the worker fails after ``MAX_ATTEMPTS`` instead of looping.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Left
from django.utils import timezone

from webapp.core.locks import advisory_lock
from webapp.documents.batches import csv_rows, line_rows
from webapp.documents.extraction import ExtractionError, extract
from webapp.documents.intake import RejectedUpload
from webapp.documents.models import ChunkSummary, Document, Job, SentimentBatch, SentimentItem, Summary
from webapp.documents.progress import publish_progress
from webapp.review import services as review

if TYPE_CHECKING:
    from inference.sentiment import SentimentClassifier, SentimentResult
    from inference.summarize import Summarizer

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
JOB_LOCK_CLASS = 7301  # advisory-lock namespace of jobs: (JOB_LOCK_CLASS, job id)
SEARCHED_CHARACTERS = 100_000
SENTIMENT_SENTENCES = 200
TRANSIENT = (OperationalError, InterfaceError)  # the database went away for a moment


@contextlib.contextmanager
def claimed(job_id: int) -> Iterator[Job | None]:
    """The job, claimed under its advisory lock for the block; None when there is nothing to do
    (another worker holds it, or it has finished)."""
    with advisory_lock(JOB_LOCK_CLASS, job_id) as locked:
        yield claim(job_id) if locked else None


def claim(job_id: int) -> Job | None:
    """Take a queued job, or a running one whose worker died; None when there is nothing to do."""
    taken = Job.objects.filter(pk=job_id).filter(Q(state=Job.State.QUEUED) | Q(state=Job.State.RUNNING))
    if not taken.filter(attempts__lt=MAX_ATTEMPTS).update(
        state=Job.State.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now()
    ):
        if taken.filter(attempts__gte=MAX_ATTEMPTS).exists():
            fail(
                Job.objects.get(pk=job_id),
                f"This job stopped the worker {MAX_ATTEMPTS} times, so it was not tried again.",
            )
        return None
    job = Job.objects.select_related("document").get(pk=job_id)
    publish_progress(job)
    return job


def fail(job: Job, reason: str) -> None:
    # together: nobody sees a failed reading job next to a document still waiting to be read
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).exclude(state__in=Job.FINISHED).update(
            state=Job.State.FAILED, error=reason, finished_at=timezone.now()
        )
        if job.document_id and job.kind == Job.Kind.EXTRACT:
            Document.objects.filter(pk=job.document_id, status=Document.Status.PENDING).update(
                status=Document.Status.FAILED, error=reason
            )
    job.refresh_from_db()
    publish_progress(job)


def fail_too_slow(job: Job, doing: str) -> None:
    """Celery's soft time limit: the job fails with the reason; the hard limit is the backstop."""
    minutes = settings.CELERY_TASK_SOFT_TIME_LIMIT // 60
    fail(job, f"{doing} took longer than {minutes} minutes, so it was stopped.")


def finish(job: Job) -> None:
    Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(
        state=Job.State.DONE, done=job.total, finished_at=timezone.now()
    )
    job.refresh_from_db()
    publish_progress(job)


@shared_task(bind=True, autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=60, max_retries=5)
def extract_document(self: object, job_id: int) -> None:
    """Read an uploaded document's text, pages and words."""
    with claimed(job_id) as job:
        if job is None or job.document is None:
            return
        document = job.document
        try:
            extracted = extract(document.kind, bytes(document.original))
        except ExtractionError as error:
            fail(job, str(error))
            return
        except SoftTimeLimitExceeded:
            fail_too_slow(job, "Reading the file")
            return
        Document.objects.filter(pk=document.pk).update(
            text=extracted.text,
            pages=extracted.pages,
            words=extracted.words,
            sentiment=document_sentiment(extracted.text),
            status=Document.Status.READY,
            error="",
        )
        # A second statement: within one UPDATE, "text" would still be the old, empty value.
        Document.objects.filter(pk=document.pk).update(
            search=SearchVector(Value(document.name), weight="A", config="simple")
            + SearchVector(Left("text", SEARCHED_CHARACTERS), weight="B", config="simple")
        )
        job.total = 1
        finish(job)


@cache
def summarizer() -> Summarizer:
    """One engine per worker process, loaded on the first summary it is given."""
    from inference.summarize import Summarizer

    return Summarizer.from_config(settings.PARLEY_INFERENCE, max_batch_size=settings.PARLEY_SUMMARY_BATCH_SIZE)


def _cancelled(job_id: int) -> bool:
    return Job.objects.filter(pk=job_id, state=Job.State.CANCELLED).exists()


@shared_task(bind=True, autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=60, max_retries=5)
def summarize_document(self: object, job_id: int) -> None:
    """Summarize a whole document: every chunk (batched), then the combination.

    Chunk summaries are saved as they finish, so a job taken over after a crash or a
    retry starts from the chunks already done.
    """
    from inference.errors import CancelledError, InferenceError

    with claimed(job_id) as job:
        if job is None:
            return
        summary = Summary.objects.select_related("document").get(job=job)
        text = summary.document.text
        done = dict(ChunkSummary.objects.filter(summary=summary).values_list("index", "text"))

        def on_progress(finished: int, total: int) -> None:
            Job.objects.filter(pk=job_id).update(done=finished, total=total + 1)  # +1: the final combination
            job.done, job.total = finished, total + 1
            publish_progress(job)

        def on_chunk(index: int, chunk_text: str) -> None:
            ChunkSummary.objects.get_or_create(summary=summary, index=index, defaults={"text": chunk_text})

        try:
            writer = summarizer()
            result = writer.summarize(
                text,
                summary.length,
                summary.form,
                on_progress=on_progress,
                done_chunks=done,
                on_chunk=on_chunk,
                should_stop=lambda: _cancelled(job_id),
            )
            key_sentences = writer.key_sentences(text)
        except CancelledError:
            return  # the job row already says cancelled
        except SoftTimeLimitExceeded:
            fail_too_slow(job, "The summary")
            return
        except InferenceError as error:
            fail(job, f"The summary could not be written: {error}")
            return
        if _cancelled(job_id):
            return
        Summary.objects.filter(pk=summary.pk).update(
            text=result.summary, key_sentences=key_sentences, model_name=writer.engine.model_name
        )
        review.summary_track(summary_id=summary.pk)
        finish(job)


@worker_ready.connect
def requeue_orphaned_jobs(**kwargs: Any) -> None:
    """At worker start, send again every unfinished job that no worker holds.

    A job whose worker was killed stays unacknowledged in the broker until its visibility
    timeout; this takes it up at once instead. Sending a job twice is harmless: the
    claim turns the extra delivery into nothing.
    """
    tasks = {
        Job.Kind.EXTRACT: extract_document,
        Job.Kind.SUMMARY: summarize_document,
        Job.Kind.SENTIMENT: classify_batch,
    }
    for job_id, kind in Job.objects.filter(state__in=(Job.State.QUEUED, Job.State.RUNNING)).values_list("pk", "kind"):
        with advisory_lock(JOB_LOCK_CLASS, job_id) as free:
            if free:
                tasks[Job.Kind(kind)].delay(job_id)
    connection.close()


def document_sentiment(text: str) -> dict[str, object]:
    """The mean of the sentence probabilities, over up to SENTIMENT_SENTENCES spread through the text."""
    from inference.summarize import split_sentences

    sentences = [s for s in split_sentences(text) if len(s.split()) >= 3]
    if not sentences:
        return {}
    step = max(1, len(sentences) // SENTIMENT_SENTENCES)
    chosen = sentences[::step][:SENTIMENT_SENTENCES]
    results = [r for r in classifier().classify(chosen) if r.probabilities]
    if not results:
        return {}
    labels = list(results[0].probabilities)
    mean = {label: sum(r.probabilities[label] for r in results) / len(results) for label in labels}
    label = max(mean, key=lambda name: mean[name])
    return {"label": label, "score": round(mean[label], 4), "probabilities": mean, "sentences": len(results)}


@cache
def classifier() -> SentimentClassifier:
    from inference.sentiment import SentimentClassifier

    return SentimentClassifier.from_config(settings.PARLEY_INFERENCE)


# Classified, saved and reported together: large enough that sorting by length packs the
# model's batches well and the save is one statement, small enough to report often.
ITEMS_PER_ROUND = 2048


@shared_task(bind=True, autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=60, max_retries=5)
def classify_batch(self: object, job_id: int) -> None:
    """Turn the batch's source into items (once), then label every unlabelled one, in rounds."""
    with claimed(job_id) as job:
        if job is None:
            return
        batch = SentimentBatch.objects.get(job=job)
        try:
            if not batch.items.exists():
                _create_items(batch)
            total = batch.items.count()
            job.total, job.done = total, batch.items.exclude(label="").count()
            Job.objects.filter(pk=job.pk).update(total=job.total, done=job.done)
            model = classifier()
            threshold = settings.PARLEY_SENTIMENT_REVIEW_BELOW
            while not _cancelled(job_id):
                items = list(batch.items.filter(label="").order_by("row")[:ITEMS_PER_ROUND])
                if not items:
                    break
                results = model.classify([i.text for i in items])
                _save_labels([i.pk for i in items], results, threshold)
                job.done += len(items)
                Job.objects.filter(pk=job.pk).update(done=job.done)
                publish_progress(job)
        except RejectedUpload as error:
            fail(job, str(error))
            return
        except SoftTimeLimitExceeded:
            fail_too_slow(job, "Classifying")
            return
        if _cancelled(job_id):
            return
        SentimentBatch.objects.filter(pk=batch.pk).update(model_name=model.name)
        review.sentiment_batch_track(batch_id=batch.pk)
        finish(job)


def _save_labels(item_ids: list[int], results: list[SentimentResult], threshold: float) -> None:
    """One UPDATE … FROM (VALUES …) for the whole round (bulk_update's CASE grows too slow)."""
    rows = [
        (pk, r.label, r.score, json.dumps(r.probabilities), r.label != "empty" and r.score < threshold)
        for pk, r in zip(item_ids, results, strict=True)
    ]
    values = ", ".join(["(%s, %s, %s, %s::jsonb, %s)"] * len(rows))
    table = SentimentItem._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS item SET label = v.label, score = v.score, probabilities = v.probabilities, "
            f"needs_review = v.needs_review FROM (VALUES {values}) AS v(id, label, score, probabilities, needs_review) "
            "WHERE item.id = v.id",
            [value for row in rows for value in row],
        )


def _create_items(batch: SentimentBatch) -> None:
    data = bytes(batch.raw)
    rows = csv_rows(data, batch.text_column) if batch.source == SentimentBatch.Source.CSV else line_rows(data)
    chunk: list[SentimentItem] = []
    for row in rows:
        if row.number > settings.PARLEY_SENTIMENT_MAX_ROWS:
            raise RejectedUpload(f"The file has more than {settings.PARLEY_SENTIMENT_MAX_ROWS:,} rows; split it up.")
        chunk.append(SentimentItem(batch=batch, row=row.number, text=row.text, extra=row.extra))
        if len(chunk) == 5000:
            SentimentItem.objects.bulk_create(chunk, ignore_conflicts=True)
            chunk = []
    SentimentItem.objects.bulk_create(chunk, ignore_conflicts=True)
