"""Writes of sentiment batches: taking a source, choosing its column, and classifying it.

``batch_create`` and ``batch_choose_column`` run in the request and queue the job on
commit; ``batch_classify`` is the job's work, in a Celery worker: it turns the source
into items once (all of them in one transaction, so a worker killed half way leaves
none), stores the classifier's labels on the batch, then labels every item still
unlabelled, in rounds, so a retried job resumes where the last one stopped.
The classifier is loaded once per worker process, on the first batch it is given.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction

from webapp.accounts.models import User
from webapp.documents.intake import RejectedUpload, detect_kind, display_name
from webapp.jobs.models import Job
from webapp.jobs.selectors import job_cancelled
from webapp.jobs.sending import job_send_on_commit
from webapp.jobs.services import (
    JobQuotaExceeded,
    job_fail,
    job_fail_too_slow,
    job_finish,
    job_progress,
    job_quota_check,
)
from webapp.review import services as review
from webapp.sentiment.models import EMPTY, SentimentBatch, SentimentItem
from webapp.sentiment.sources import count_rows, csv_preview, csv_rows, line_rows

if TYPE_CHECKING:
    from inference.sentiment import SentimentClassifier, SentimentResult

# Classified, saved and reported together: large enough that sorting by length packs the
# model's batches well and the save is one statement, small enough to report often.
ITEMS_PER_ROUND = 2048
ITEMS_PER_INSERT = 5000


class BatchError(Exception):
    """A request about a batch that cannot be done; the message is for the user."""


@cache
def classifier() -> SentimentClassifier:
    """One classifier per worker process (documents' overall sentiment uses it too)."""
    from inference.sentiment import SentimentClassifier

    return SentimentClassifier.from_config(settings.PARLEY_INFERENCE)


def _check_rows(data: bytes, *, csv_file: bool) -> None:
    limit = settings.PARLEY_SENTIMENT_MAX_ROWS
    if count_rows(data, csv_file=csv_file, limit=limit) > limit:
        raise RejectedUpload(f"The file has more than {limit:,} rows; the limit is {limit:,} a batch. Split it up.")


def batch_create(user: User, *, name: str, data: bytes, pasted: bool = False) -> SentimentBatch:
    """A batch from an uploaded .csv/.txt or pasted lines. A CSV waits for its text column."""
    name = display_name(name) if not pasted else "Pasted texts"
    if not data.strip():
        raise RejectedUpload("There is nothing to classify: the text is empty.")
    if pasted or name.lower().endswith(".txt"):
        if not pasted:
            detect_kind(name, data)
        _check_rows(data, csv_file=False)
        try:
            with transaction.atomic():
                source = SentimentBatch.Source.PASTE if pasted else SentimentBatch.Source.LINES
                batch = SentimentBatch.objects.create(owner=user, name=name, source=source, raw=data)
                _queue(batch)
        except JobQuotaExceeded as error:  # nothing was kept
            raise RejectedUpload(str(error)) from None
        return batch
    if not name.lower().endswith(".csv"):
        raise RejectedUpload("Upload a .csv file (then pick its text column) or a .txt file with one item a line.")
    detect_kind(name, data)
    columns, _ = csv_preview(data)
    _check_rows(data, csv_file=True)
    return SentimentBatch.objects.create(
        owner=user, name=name, source=SentimentBatch.Source.CSV, raw=data, columns=columns
    )


def batch_choose_column(batch: SentimentBatch, column: str) -> None:
    """Classify the CSV's ``column``. The same choice sent twice (a double click, a resent
    form) queues one job; a different column once one is queued is refused."""
    if column not in batch.columns:
        raise BatchError(f"The CSV has no column named “{column}”; pick one of the list.")
    try:
        with transaction.atomic():
            # The row lock makes two requests at once take turns: the second sees the first's job.
            current = SentimentBatch.objects.select_for_update().get(pk=batch.pk)
            if current.job_id is not None:
                if current.text_column == column:
                    batch.text_column, batch.job_id = current.text_column, current.job_id
                    return
                raise BatchError("This batch is already being classified.")
            batch.text_column = column
            batch.save(update_fields=["text_column"])
            _queue(batch)
    except JobQuotaExceeded as error:
        batch.text_column = ""
        raise BatchError(str(error)) from None


def _queue(batch: SentimentBatch) -> None:
    job_quota_check(owner_id=batch.owner_id)  # JobQuotaExceeded, with the owner's row held
    job = Job.objects.create(owner=batch.owner, kind=Job.Kind.SENTIMENT)
    batch.job = job
    batch.save(update_fields=["job"])
    job_send_on_commit(job)


def batch_classify(*, job: Job) -> None:
    """Label every unlabelled item of the job's batch, in rounds, until done or cancelled."""
    batch = SentimentBatch.objects.filter(job=job).first()
    if batch is None:  # the batch was deleted after its job was queued
        job_fail(job=job, reason="The batch is gone.")
        return
    try:
        if not batch.items.exists():  # all of them or none, so none means not yet
            _create_items(batch)
        job_progress(job=job, done=batch.items.exclude(label="").count(), total=batch.items.count())
        model = classifier()
        # Stored before the first round: the page shows counts while the rounds go on.
        SentimentBatch.objects.filter(pk=batch.pk).update(labels=list(model.labels))
        threshold = settings.PARLEY_SENTIMENT_REVIEW_BELOW
        while not job_cancelled(job_id=job.pk):
            items = list(batch.items.filter(label="").order_by("row")[:ITEMS_PER_ROUND])
            if not items:
                break
            results = model.classify([i.text for i in items])
            _save_labels([i.pk for i in items], results, threshold)
            job_progress(job=job, done=job.done + len(items))
    except RejectedUpload as error:
        job_fail(job=job, reason=str(error))
        return
    except SoftTimeLimitExceeded:
        job_fail_too_slow(job=job, doing="Classifying")
        return
    if job_cancelled(job_id=job.pk):
        return
    SentimentBatch.objects.filter(pk=batch.pk).update(model_name=model.name)
    review.sentiment_batch_track(batch_id=batch.pk)
    job_finish(job=job)


def _save_labels(item_ids: list[int], results: list[SentimentResult], threshold: float) -> None:
    """One UPDATE … FROM (VALUES …) for the whole round (bulk_update's CASE grows too slow)."""
    rows = [
        (pk, r.label, r.score, json.dumps(r.probabilities), r.label != EMPTY and r.score < threshold)
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


@transaction.atomic
def _create_items(batch: SentimentBatch) -> None:
    """Every row's item, in one transaction: a worker killed half way, or a row that cannot
    be read, leaves no item, and the job's next attempt makes them all."""
    data = bytes(batch.raw)
    rows = csv_rows(data, batch.text_column) if batch.source == SentimentBatch.Source.CSV else line_rows(data)
    chunk: list[SentimentItem] = []
    for row in rows:
        if row.number > settings.PARLEY_SENTIMENT_MAX_ROWS:
            raise RejectedUpload(f"The file has more than {settings.PARLEY_SENTIMENT_MAX_ROWS:,} rows; split it up.")
        chunk.append(SentimentItem(batch=batch, row=row.number, text=row.text, extra=row.extra))
        if len(chunk) == ITEMS_PER_INSERT:
            SentimentItem.objects.bulk_create(chunk, ignore_conflicts=True)
            chunk = []
    SentimentItem.objects.bulk_create(chunk, ignore_conflicts=True)
