"""Reads for the archive of everything a user owns; nothing here writes, and every lookup
is scoped to the user. Lists never load a document's bytes: each document's original and
text are read on their own, one at a time, when their turn in the archive comes, and an
original in slices."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connection

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
    """One document's original bytes, a slice at a time, so that no more than a slice is in
    memory however large the file. (Postgres sends a bytea as hex text, so a whole original
    read at once was held three times over while it arrived: its hex, twice its size, the
    unescaped bytes and their Python copy.)

    The slices are rows of one query read through a server-side cursor, fetched one at a
    time: a cursor reads from the snapshot it opened with, so a document deleted while its
    slices are read still comes out whole, as it was when its turn came."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            """
            SELECT substring(d."original" FROM slice.start FOR %(slice)s)
            FROM "documents_document" d, generate_series(1, length(d."original"), %(slice)s) AS slice(start)
            WHERE d."id" = %(document)s AND d."owner_id" = %(owner)s
            ORDER BY slice.start
            """,
            {"slice": ORIGINAL_SLICE_BYTES, "document": document_id, "owner": user.pk},
        )
        while (row := cursor.fetchone()) is not None:
            yield bytes(row[0])


def sentiment_batches_of(*, user: User) -> Iterator[SentimentBatch]:
    """Every sentiment batch of the user, oldest first, without the upload as it was sent."""
    return (
        SentimentBatch.objects.filter(owner=user)
        .defer("raw")
        .order_by("created_at", "pk")
        .iterator(chunk_size=CHUNK_SIZE)
    )
