"""Documents: taking uploads, finding and deleting them. Every lookup is scoped to its owner."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.postgres.search import SearchQuery
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from webapp.accounts.models import User
from webapp.documents.batches import count_rows, csv_preview
from webapp.documents.intake import RejectedUpload, detect_kind, display_name
from webapp.documents.models import Document, Job, SentimentBatch, SentimentItem, Summary
from webapp.documents.progress import publish_progress
from webapp.documents.tasks import classify_batch, extract_document, summarize_document


@dataclass
class UploadOutcome:
    added: list[Document] = field(default_factory=list)
    already_there: list[Document] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name, why)


def documents_for(user: User, query: str = "") -> QuerySet[Document]:
    latest_summary = Summary.objects.filter(document=OuterRef("pk")).order_by("-created_at")
    documents = (
        Document.objects.filter(owner=user)
        .defer("original", "text")
        .annotate(summary_state=Subquery(latest_summary.values("job__state")[:1]))
    )
    query = query.strip()
    if query:
        documents = documents.filter(search=SearchQuery(query, config="simple", search_type="websearch"))
    return documents


def document_get(user: User, document_id: object) -> Document:
    try:
        return Document.objects.get(pk=int(str(document_id)), owner=user)
    except (Document.DoesNotExist, ValueError):
        raise Http404("No such document.") from None


def documents_upload(user: User, files: list[UploadedFile], oversized: list[str]) -> UploadOutcome:
    """Keep each acceptable file and queue its text extraction; say why for the others."""
    outcome = UploadOutcome()
    limit_mb = settings.PARLEY_UPLOAD_MAX_BYTES / (1024 * 1024)
    for raw_name in oversized:
        outcome.refused.append((display_name(raw_name), f"The file is larger than the {limit_mb:g} MB limit."))
    if len(files) + len(oversized) > settings.PARLEY_UPLOAD_MAX_FILES:
        outcome.refused.append(("", f"At most {settings.PARLEY_UPLOAD_MAX_FILES} files at a time, please."))
        return outcome
    for upload in files:
        name = display_name(upload.name or "")
        data = upload.read()
        try:
            kind = detect_kind(name, data)
        except RejectedUpload as error:
            outcome.refused.append((name, str(error)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        existing = Document.objects.filter(owner=user, sha256=digest).defer("original", "text").first()
        if existing is not None:
            outcome.already_there.append(existing)
            continue
        try:
            outcome.added.append(_document_create(user, name, kind, data, digest))
        except IntegrityError:  # the same file, uploaded twice at the same moment
            outcome.already_there.append(Document.objects.defer("original", "text").get(owner=user, sha256=digest))
    return outcome


def _document_create(user: User, name: str, kind: str, data: bytes, digest: str) -> Document:
    with transaction.atomic():
        document = Document.objects.create(
            owner=user, name=name, kind=kind, size=len(data), sha256=digest, original=data
        )
        job = Job.objects.create(owner=user, kind=Job.Kind.EXTRACT, document=document, total=1)
        transaction.on_commit(lambda: extract_document.delay(job.pk))
    return document


def document_delete(document: Document) -> None:
    document.delete()


class DocumentError(Exception):
    """A request about a document that cannot be done; the message is for the user."""


def summary_request(document: Document, length: str, form: str) -> Summary:
    """Queue a summary, or return the one already made or on its way with the same options."""
    if document.status != Document.Status.READY:
        raise DocumentError("The document's text has not been read yet, so it cannot be summarized.")
    with transaction.atomic():
        Document.objects.select_for_update().only("pk").get(pk=document.pk)
        existing = (
            Summary.objects.filter(document=document, length=length, form=form)
            .exclude(job__state__in=(Job.State.FAILED, Job.State.CANCELLED))
            .select_related("job")
            .first()
        )
        if existing is not None:
            return existing
        job = Job.objects.create(owner=document.owner, kind=Job.Kind.SUMMARY, document=document)
        summary = Summary.objects.create(document=document, job=job, length=length, form=form)
        transaction.on_commit(lambda: summarize_document.delay(job.pk))
    return summary


def summaries_for(document: Document) -> QuerySet[Summary]:
    return document.summaries.select_related("job")


def job_get(user: User, job_id: object) -> Job:
    try:
        return Job.objects.get(pk=int(str(job_id)), owner=user)
    except (Job.DoesNotExist, ValueError):
        raise Http404("No such job.") from None


def job_cancel(job: Job) -> bool:
    """Stop a queued or running job; the worker notices before its next step."""
    cancelled = bool(
        Job.objects.filter(pk=job.pk, state__in=(Job.State.QUEUED, Job.State.RUNNING)).update(
            state=Job.State.CANCELLED, finished_at=timezone.now(), error="Cancelled."
        )
    )
    if cancelled:
        job.refresh_from_db()
        publish_progress(job)
    return cancelled


# ---- sentiment batches ------------------------------------------------------------------


def _check_rows(data: bytes) -> None:
    rows = count_rows(data)
    limit = settings.PARLEY_SENTIMENT_MAX_ROWS
    if rows - 1 > limit:  # less the header, where there is one
        raise RejectedUpload(f"The file has about {rows - 1:,} rows; the limit is {limit:,} a batch. Split it up.")


def batch_create(user: User, *, name: str, data: bytes, pasted: bool = False) -> SentimentBatch:
    """A batch from an uploaded .csv/.txt or pasted lines. A CSV waits for its text column."""
    name = display_name(name) if not pasted else "Pasted texts"
    if not data.strip():
        raise RejectedUpload("There is nothing to classify: the text is empty.")
    if pasted or name.lower().endswith(".txt"):
        if not pasted:
            detect_kind(name, data)
        _check_rows(data + b"\n")
        with transaction.atomic():
            batch = SentimentBatch.objects.create(
                owner=user, name=name, source=SentimentBatch.Source.PASTE if pasted else SentimentBatch.Source.LINES,
                raw=data,
            )  # fmt: skip
            _queue(batch)
        return batch
    if not name.lower().endswith(".csv"):
        raise RejectedUpload("Upload a .csv file (then pick its text column) or a .txt file with one item a line.")
    detect_kind(name, data)
    columns, _ = csv_preview(data)
    _check_rows(data)
    return SentimentBatch.objects.create(
        owner=user, name=name, source=SentimentBatch.Source.CSV, raw=data, columns=columns
    )


def batch_choose_column(batch: SentimentBatch, column: str) -> None:
    if batch.job_id is not None:
        raise DocumentError("This batch is already being classified.")
    if column not in batch.columns:
        raise DocumentError(f"The CSV has no column named “{column}”; pick one of the list.")
    with transaction.atomic():
        batch.text_column = column
        batch.save(update_fields=["text_column"])
        _queue(batch)


def _queue(batch: SentimentBatch) -> None:
    job = Job.objects.create(owner=batch.owner, kind=Job.Kind.SENTIMENT)
    batch.job = job
    batch.save(update_fields=["job"])
    transaction.on_commit(lambda: classify_batch.delay(job.pk))


def batches_for(user: User) -> QuerySet[SentimentBatch]:
    return SentimentBatch.objects.filter(owner=user).select_related("job").defer("raw")


def batch_get(user: User, batch_id: object) -> SentimentBatch:
    try:
        return SentimentBatch.objects.select_related("job").get(pk=int(str(batch_id)), owner=user)
    except (SentimentBatch.DoesNotExist, ValueError):
        raise Http404("No such batch.") from None


def batch_preview(batch: SentimentBatch) -> list[list[str]]:
    return csv_preview(bytes(batch.raw))[1]


@dataclass(frozen=True)
class LabelCount:
    label: str
    count: int
    share: float  # 0..1


def batch_counts(batch: SentimentBatch) -> list[LabelCount]:
    counts = dict(batch.items.exclude(label="").values_list("label").annotate(n=Count("pk")).values_list("label", "n"))
    total = sum(counts.values()) or 1
    order = ["negative", "neutral", "positive", "empty"]
    return [
        LabelCount(label, counts.get(label, 0), counts.get(label, 0) / total)
        for label in order
        if label in counts or label != "empty"
    ]


def batch_items(batch: SentimentBatch, *, label: str = "", below: float | None = None) -> QuerySet[SentimentItem]:
    items = batch.items.all()
    if label:
        items = items.filter(label=label)
    if below is not None:
        items = items.filter(score__lt=below)
    return items
