"""Reads for the archive of everything a user owns; nothing here writes, and every lookup
is scoped to the user. Lists never load a document's bytes: each document's original and
text are read on their own, one at a time, when their turn in the archive comes, and an
original in slices."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models.functions import Substr

from webapp.accounts.models import User
from webapp.chat.models import Conversation
from webapp.documents.models import Document
from webapp.sentiment.models import SentimentBatch

CHUNK_SIZE = 100
ORIGINAL_SLICE_BYTES = 1024 * 1024


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


def document_text(*, user: User, document_id: int) -> str | None:
    """One document's extracted text; None if it went meanwhile."""
    return Document.objects.filter(owner=user, pk=document_id).values_list("text", flat=True).first()


def document_original(*, user: User, document_id: int) -> Iterator[bytes]:
    """One document's original bytes, a slice at a time, each read on its own when asked
    for, so that no more than a slice is in memory however large the file. (Postgres sends
    a bytea as hex text, so a whole original read at once was held three times over while
    it arrived: its hex, twice its size, the unescaped bytes and their Python copy.)
    Originals never change; one deleted while its slices are read ends where the deletion
    found it."""
    start = 1  # SQL counts from 1
    while True:
        piece = (
            Document.objects.filter(owner=user, pk=document_id)
            .values_list(Substr("original", start, ORIGINAL_SLICE_BYTES), flat=True)
            .first()
        )
        if not piece:
            return
        yield bytes(piece)
        if len(piece) < ORIGINAL_SLICE_BYTES:
            return
        start += ORIGINAL_SLICE_BYTES


def sentiment_batches_of(*, user: User) -> Iterator[SentimentBatch]:
    """Every sentiment batch of the user, oldest first, without the upload as it was sent."""
    return (
        SentimentBatch.objects.filter(owner=user)
        .defer("raw")
        .order_by("created_at", "pk")
        .iterator(chunk_size=CHUNK_SIZE)
    )
