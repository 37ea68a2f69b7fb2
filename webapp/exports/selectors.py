"""Reads for the archive of everything a user owns; nothing here writes, and every lookup
is scoped to the user. Lists never load a document's bytes: each document's original and
text are read on their own, one at a time, when their turn in the archive comes."""

from __future__ import annotations

from collections.abc import Iterator

from webapp.accounts.models import User
from webapp.chat.models import Conversation
from webapp.documents.models import Document
from webapp.sentiment.models import SentimentBatch

CHUNK_SIZE = 100


def conversations_of(*, user: User) -> Iterator[Conversation]:
    """Every conversation of the user, archived ones included, oldest first."""
    # with its project, which each conversation's JSON names
    conversations = Conversation.objects.filter(owner=user).select_related("project")
    return conversations.order_by("created_at", "pk").iterator(chunk_size=CHUNK_SIZE)


def documents_of(*, user: User) -> Iterator[tuple[int, str]]:
    """(id, name) of every document of the user, oldest first; not their contents."""
    return (
        Document.objects.filter(owner=user)
        .order_by("created_at", "pk")
        .values_list("pk", "name")
        .iterator(chunk_size=CHUNK_SIZE)
    )


def document_contents(*, user: User, document_id: int) -> tuple[bytes, str] | None:
    """One document's original bytes and extracted text; None if it went meanwhile."""
    row = Document.objects.filter(owner=user, pk=document_id).values_list("original", "text").first()
    if row is None:
        return None
    original, text = row
    return bytes(original), text


def sentiment_batches_of(*, user: User) -> Iterator[SentimentBatch]:
    """Every sentiment batch of the user, oldest first, without the upload as it was sent."""
    return (
        SentimentBatch.objects.filter(owner=user)
        .defer("raw")
        .order_by("created_at", "pk")
        .iterator(chunk_size=CHUNK_SIZE)
    )
