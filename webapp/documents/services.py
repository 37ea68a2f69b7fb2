"""Writes of documents: taking uploads, asking for summaries, deleting.

Each write runs in one transaction and queues its job on commit, so a worker never
sees a job whose rows are not saved yet. Reads are in ``selectors``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from webapp.accounts.models import User
from webapp.documents.intake import RejectedUpload, detect_kind, display_name
from webapp.documents.models import Document, Summary
from webapp.documents.tasks import extract_document, summarize_document
from webapp.jobs.models import Job


@dataclass
class UploadOutcome:
    added: list[Document] = field(default_factory=list)
    already_there: list[Document] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name, why)


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
