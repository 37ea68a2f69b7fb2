"""Finding the passages of a user's documents that answer a question.

Two searches over the passages of the documents asked about, fused by reciprocal rank
fusion (RRF: each passage scores the sum of 1 / (60 + its rank) in each list): nearest
neighbours of the question's vector (cosine, served by the HNSW index), and the words of
the question (English full text: the passages matching the most of its words first). The
first finds a passage that says the same in other words, the second one that shares a
rare word, a name or a code the vectors blur.

Every search starts from the asking user's own documents (``documents_of``): another
user's passages are never candidates, whatever they say.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from django.db import connection, transaction
from pgvector.django import CosineDistance

from webapp.accounts.models import User
from webapp.documents.models import Document, Passage

RRF_K = 60
CANDIDATES = 20  # taken from each search before fusing
# The HNSW search's candidate list (pgvector's default is 40): wider, so a question about a
# few documents among many still finds enough of theirs after the filter.
EF_SEARCH = 100
# A passage supports an answer when its vector is at least this close to the question's
# (all-MiniLM-L6-v2: unrelated sentences score about 0-0.2, paraphrases 0.5 and more), or
# it has at least half of the question's words.
MIN_SIMILARITY = 0.3


@dataclass(frozen=True)
class Found:
    passage_id: int
    document_id: int
    similarity: float  # cosine similarity to the question, -1 to 1
    matched_words: int = 0  # of the question's (stemmed, stop words left out)
    question_words: int = 0
    score: float = 0.0  # RRF

    @property
    def supports(self) -> bool:
        """Close enough in meaning, or sharing enough words, to be given as a source."""
        shares_words = self.matched_words > 0 and 2 * self.matched_words >= self.question_words
        return self.similarity >= MIN_SIMILARITY or shares_words


def documents_of(*, user: User, document_ids: Iterable[int]) -> list[int]:
    """Those of ``document_ids`` that are the user's and read: the only ones searched."""
    return list(
        Document.objects.filter(owner=user, pk__in=list(document_ids), status=Document.Status.READY).values_list(
            "pk", flat=True
        )
    )


def question_vector(question: str) -> list[float]:
    from webapp.documents.passages import embedder

    return [float(value) for value in embedder().embed([question])[0]]


def vector_candidates(*, document_ids: Sequence[int], vector: Sequence[float], limit: int = CANDIDATES) -> list[Found]:
    """The passages nearest the question's vector, nearest first."""
    if not document_ids:
        return []
    nearest = (
        Passage.objects.filter(document_id__in=document_ids)
        .annotate(distance=CosineDistance("embedding", list(vector)))
        .order_by("distance")
        .values_list("pk", "document_id", "distance")
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.ef_search = %s", [EF_SEARCH])
        rows = list(nearest[:limit])
    if len(rows) < limit and Passage.objects.filter(document_id__in=document_ids).count() > len(rows):
        # The HNSW index filters after it searches: when the documents asked about are a
        # sliver of everyone's, its candidates may hold too few of theirs. Then exactly.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_indexscan = off")
            rows = list(nearest[:limit])
    return [
        Found(passage_id=pk, document_id=document_id, similarity=1 - distance) for pk, document_id, distance in rows
    ]


def question_words(question: str) -> list[str]:
    """The question's words as the passages' index holds them: stemmed, stop words left out."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tsvector_to_array(to_tsvector('english', %s))", [question])
        row = cursor.fetchone()
    return list(row[0]) if row else []


def _as_tsquery(word: str) -> str:
    """One lexeme as a tsquery literal (quoted, so no word is read as an operator)."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def keyword_candidates(
    *, document_ids: Sequence[int], question: str, vector: Sequence[float], limit: int = CANDIDATES
) -> list[Found]:
    """The passages sharing the most of the question's words, then the denser matches first.

    The words matched are counted with one ``@@`` a word, and the vector similarity is
    computed only for the passages kept: at 100,000 passages a correlated count, or the
    distance of every matching passage, took most of the search's time.
    """
    words = question_words(question)
    if not document_ids or not words:
        return []
    queries = [_as_tsquery(word) for word in words]
    matched = " + ".join(["(p.search @@ %s::tsquery)::int"] * len(queries))
    sql = f"""
        SELECT kept.id, kept.document_id, 1 - (p.embedding <=> %s::vector), kept.matched
        FROM (
            SELECT p.id, p.document_id, {matched} AS matched, ts_rank_cd(p.search, %s::tsquery) AS rank
            FROM documents_passage p
            WHERE p.document_id = ANY(%s) AND p.search @@ %s::tsquery
            ORDER BY matched DESC, rank DESC, p.id
            LIMIT %s
        ) kept JOIN documents_passage p ON p.id = kept.id
        ORDER BY kept.matched DESC, kept.rank DESC, kept.id
    """
    any_word = " | ".join(queries)
    vector_text = "[" + ",".join(f"{value:.7g}" for value in vector) + "]"
    with connection.cursor() as cursor:
        cursor.execute(sql, [vector_text, *queries, any_word, list(document_ids), any_word, limit])
        rows = cursor.fetchall()
    return [
        Found(
            passage_id=pk,
            document_id=document_id,
            similarity=similarity,
            matched_words=count,
            question_words=len(words),
        )
        for pk, document_id, similarity, count in rows
    ]


def fused(rankings: Sequence[Sequence[Found]], *, limit: int) -> list[Found]:
    """Reciprocal rank fusion of several rankings, best first; a passage in two keeps
    what each knows of it (its words from the keyword search)."""
    scores: dict[int, float] = {}
    found: dict[int, Found] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item.passage_id] = scores.get(item.passage_id, 0.0) + 1 / (RRF_K + rank)
            known = found.get(item.passage_id)
            if known is None or item.question_words > known.question_words:
                found[item.passage_id] = item
    best = sorted(scores, key=lambda pk: (-scores[pk], pk))[:limit]
    return [replace(found[pk], score=scores[pk]) for pk in best]


def passages_search(*, user: User, document_ids: Iterable[int], question: str, limit: int = 5) -> list[Found]:
    """The ``limit`` passages of the user's documents that best answer ``question``, fused."""
    documents = documents_of(user=user, document_ids=document_ids)
    if not documents or not question.strip():
        return []
    vector = question_vector(question)
    return fused(
        [
            vector_candidates(document_ids=documents, vector=vector),
            keyword_candidates(document_ids=documents, question=question, vector=vector),
        ],
        limit=limit,
    )
