"""Writes of documents: taking uploads, asking for summaries, deleting; and collections.

Each write runs in one transaction and queues its job on commit, so a worker never
sees a job whose rows are not saved yet. Reads are in ``selectors``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from webapp.accounts.models import User
from webapp.accounts.usage import budget_refusal
from webapp.core.names import tidied_name
from webapp.documents import quotas
from webapp.documents.intake import RejectedUpload, detect_kind, display_name
from webapp.documents.models import COLLECTION_NAME_MAX_LENGTH, Collection, Document, Summary
from webapp.jobs.models import Job
from webapp.jobs.sending import job_send_on_commit
from webapp.jobs.services import JobQuotaExceeded, job_quota_check


@dataclass
class UploadOutcome:
    added: list[Document] = field(default_factory=list)
    already_there: list[Document] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name, why)


@dataclass(frozen=True)
class _Accepted:
    name: str
    kind: str
    data: bytes
    digest: str


def documents_upload(user: User, files: list[UploadedFile], oversized: list[str]) -> UploadOutcome:
    """Keep each acceptable file and queue its text extraction; say why for the others.

    The new files are taken together or not at all: when they would pass the owner's
    storage or document quota, none is kept and the refusal names the quota and the usage.
    """
    outcome = UploadOutcome()
    limit_mb = settings.PARLEY_UPLOAD_MAX_BYTES / (1024 * 1024)
    for raw_name in oversized:
        outcome.refused.append((display_name(raw_name), f"The file is larger than the {limit_mb:g} MB limit."))
    if len(files) + len(oversized) > settings.PARLEY_UPLOAD_MAX_FILES:
        outcome.refused.append(("", f"At most {settings.PARLEY_UPLOAD_MAX_FILES} files at a time, please."))
        return outcome
    accepted: dict[str, _Accepted] = {}
    for upload in files:
        name = display_name(upload.name or "")
        data = upload.read()
        try:
            kind = detect_kind(name, data)
        except RejectedUpload as error:
            outcome.refused.append((name, str(error)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        accepted.setdefault(digest, _Accepted(name, kind, data, digest))
    if accepted:
        _documents_create(user, list(accepted.values()), outcome)
    return outcome


def _documents_create(user: User, accepted: list[_Accepted], outcome: UploadOutcome) -> None:
    with transaction.atomic():
        # Held to the end: another upload of this user's waits here and then counts these files.
        quotas.owner_lock(owner_id=user.pk)
        existing = {
            document.sha256: document
            for document in Document.objects.filter(owner=user, sha256__in=[a.digest for a in accepted]).defer(
                "original", "text"
            )
        }
        new = [a for a in accepted if a.digest not in existing]
        outcome.already_there.extend(existing[a.digest] for a in accepted if a.digest in existing)
        refusal = quotas.storage_refusal(
            usage=quotas.storage_usage(owner_id=user.pk),
            adding_bytes=sum(len(a.data) for a in new),
            adding_documents=len(new),
            adding="upload",
        )
        if refusal is not None:
            outcome.refused.append(("", refusal))
            return
        for file in new:
            document = Document.objects.create(
                owner=user, name=file.name, kind=file.kind, size=len(file.data), sha256=file.digest, original=file.data
            )
            job = Job.objects.create(owner=user, kind=Job.Kind.EXTRACT, document=document, total=1)
            job_send_on_commit(job)
            outcome.added.append(document)


def document_delete(document: Document) -> None:
    document.delete()


class DocumentError(Exception):
    """A request about a document that cannot be done; the message is for the user."""


def _same_model(model: str) -> list[str]:
    """The names a summary by ``model`` may be recorded under: summaries from before the
    choice recorded none, and were written by the installation's summary model."""
    return [model, ""] if model == settings.PARLEY_SUMMARY_MODEL else [model]


def summary_request(document: Document, length: str, form: str, model: str = "") -> Summary:
    """Queue a summary by ``model`` of the registry (the installation's summary model when
    not given), or return the one already made or on its way with the same options."""
    model = model or settings.PARLEY_SUMMARY_MODEL
    if model not in settings.PARLEY_INFERENCE.models.names:
        raise DocumentError(f"There is no model “{model}” here to write a summary.")
    if document.status != Document.Status.READY:
        raise DocumentError("The document's text has not been read yet, so it cannot be summarized.")
    with transaction.atomic():
        Document.objects.select_for_update().only("pk").get(pk=document.pk)
        existing = (
            Summary.objects.filter(document=document, length=length, form=form, model__in=_same_model(model))
            .exclude(job__state__in=(Job.State.FAILED, Job.State.CANCELLED))
            .select_related("job")
            .first()
        )
        if existing is not None:
            return existing
        try:
            job_quota_check(owner_id=document.owner_id)
        except JobQuotaExceeded as error:
            raise DocumentError(str(error)) from None
        refusal = budget_refusal(user_id=document.owner_id)
        if refusal is not None:
            raise DocumentError(refusal)
        job = Job.objects.create(owner=document.owner, kind=Job.Kind.SUMMARY, document=document)
        summary = Summary.objects.create(document=document, job=job, length=length, form=form, model=model)
        job_send_on_commit(job)
    return summary


# ---- collections ------------------------------------------------------------------------------


def collection_name(*, name: str) -> str:
    """``name`` with its spaces tidied, or a ``DocumentError`` saying why it cannot be one."""
    return tidied_name(name, noun="collection", max_length=COLLECTION_NAME_MAX_LENGTH, error=DocumentError)


def _collection_documents(*, owner_id: int, document_ids: Iterable[int]) -> list[int]:
    wanted = set(document_ids)
    owned = list(Document.objects.filter(owner_id=owner_id, pk__in=wanted).values_list("pk", flat=True))
    if len(owned) != len(wanted):
        raise DocumentError("A collection holds only your own documents.")
    return owned


def _collection_saved(
    *, owner_id: int, name: str, document_ids: Iterable[int], collection: Collection | None
) -> Collection:
    name = collection_name(name=name)
    taken = Collection.objects.filter(owner_id=owner_id, name__iexact=name)
    if collection is not None:
        taken = taken.exclude(pk=collection.pk)
    try:
        with transaction.atomic():
            if taken.exists():
                raise DocumentError(f"You already have a collection named “{name}”.")
            owned = _collection_documents(owner_id=owner_id, document_ids=document_ids)
            if collection is None:
                collection = Collection.objects.create(owner_id=owner_id, name=name)
            else:
                collection.name = name
                collection.save(update_fields=["name", "updated_at"])
            collection.documents.set(owned)
            return collection
    except IntegrityError:
        # the same name saved at the same moment in another tab: the constraint decided
        raise DocumentError(f"You already have a collection named “{name}”.") from None


def collection_create(*, owner: User, name: str, document_ids: Iterable[int] = ()) -> Collection:
    return _collection_saved(owner_id=owner.pk, name=name, document_ids=document_ids, collection=None)


def collection_update(*, collection: Collection, name: str, document_ids: Iterable[int]) -> Collection:
    """Rename the collection and set its documents; conversations it is attached to answer
    their next questions from the documents it holds then."""
    return _collection_saved(owner_id=collection.owner_id, name=name, document_ids=document_ids, collection=collection)


def collection_delete(*, collection: Collection) -> None:
    """Delete the collection (its documents stay); conversations and projects it was
    attached to lose it."""
    collection.delete()
