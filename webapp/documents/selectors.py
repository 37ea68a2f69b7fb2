"""Reads of documents and their summaries, every one scoped to its owner."""

from __future__ import annotations

from django.contrib.postgres.search import SearchQuery
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import Http404

from webapp.accounts.models import User
from webapp.documents.models import Collection, Document, Passage, Summary
from webapp.jobs.models import Job


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


def summaries_for(document: Document) -> QuerySet[Summary]:
    return document.summaries.select_related("job")


def reading_job_of(document: Document) -> Job | None:
    """The job reading the document now, while it is queued or running."""
    return (
        Job.objects.filter(document=document, kind=Job.Kind.EXTRACT, state__in=(Job.State.QUEUED, Job.State.RUNNING))
        .order_by("-pk")
        .first()
    )


def passage_of(document: Document, passage_id: object) -> Passage | None:
    """One passage of this (already owner-checked) document; None for anything else."""
    if not str(passage_id or "").isdigit():
        return None
    return Passage.objects.filter(document=document, pk=int(str(passage_id))).defer("embedding").first()


def collections_for(user: User) -> QuerySet[Collection]:
    """The user's collections by name, each with ``document_count``."""
    return Collection.objects.filter(owner=user).annotate(document_count=Count("documents"))


def collection_get(user: User, collection_id: object) -> Collection:
    try:
        return Collection.objects.get(pk=int(str(collection_id)), owner=user)
    except (Collection.DoesNotExist, ValueError):
        raise Http404("No such collection.") from None
