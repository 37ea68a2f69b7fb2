"""A document's passages: cut from its text and embedded while it is read, in the reading
worker, then saved with the text in the transaction that finishes the reading.

Embedding happens in the reading job rather than in a job of its own, so a document is
``ready`` exactly when it can be searched and asked about, a re-read replaces text and
passages together, and one progress bar covers both (docs/decisions.md, "Passages").
The embedding model is loaded once per worker process, on the first document.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings

from webapp.documents.extraction import Extracted, ExtractionError
from webapp.documents.models import EMBEDDING_DIMENSIONS, Passage

if TYPE_CHECKING:
    from inference.embeddings import Embedder

EMBEDDING_BATCH = 32  # passages embedded at once; progress is told after each batch


@cache
def embedder() -> Embedder:
    from inference.embeddings import Embedder

    model = Embedder.from_config(settings.PARLEY_INFERENCE)
    if model.model.config.hidden_size != EMBEDDING_DIMENSIONS:
        raise ExtractionError(
            f"The embedding model (PARLEY_EMBEDDING_MODEL) gives vectors of {model.model.config.hidden_size} "
            f"numbers, but passages are stored with {EMBEDDING_DIMENSIONS}; use a model of that size."
        )
    return model


def passages_embedded(extracted: Extracted, *, on_batch: Callable[[int, int], None] | None = None) -> list[Passage]:
    """The text's passages with their vectors, not yet saved (no document set).

    ``on_batch(done, total)`` is called after each batch of ``EMBEDDING_BATCH``; it may
    raise to stop (a cancelled job).
    """
    from inference.passages import split_passages

    model = embedder()
    spans = split_passages(
        extracted.text, model.tokenizer, page_starts=extracted.page_starts, headings=extracted.headings
    )
    batches = -(-len(spans) // EMBEDDING_BATCH)
    passages: list[Passage] = []
    for number in range(batches):
        batch = spans[number * EMBEDDING_BATCH : (number + 1) * EMBEDDING_BATCH]
        vectors = model.embed([span.text for span in batch], batch_size=EMBEDDING_BATCH)
        passages.extend(
            Passage(
                index=span.index,
                start=span.start,
                end=span.end,
                page=span.page,
                heading=span.heading[:300],
                text=span.text,
                embedding=vector.numpy(),
            )
            for span, vector in zip(batch, vectors, strict=True)
        )
        if on_batch is not None:
            on_batch(number + 1, batches)
    return passages


def passages_replace(*, document_id: int, passages: list[Passage]) -> None:
    """The document's passages are now these; call it inside the transaction that saves its text."""
    Passage.objects.filter(document_id=document_id).delete()
    for passage in passages:
        passage.document_id = document_id
    Passage.objects.bulk_create(passages, batch_size=500)
