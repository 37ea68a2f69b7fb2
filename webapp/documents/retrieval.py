"""Finding the passages of a user's documents that answer a question.

Two searches over the passages of the documents asked about, fused by reciprocal rank
fusion (RRF: each passage scores the sum of 1 / (60 + its rank) in each list): nearest
neighbours of the question's vector (cosine, served by the HNSW index), and the words of
the question (English full text: the passages matching the most of its words first). The
first finds a passage that says the same in other words, the second one that shares a
rare word, a name or a code the vectors blur. Both searches and their fusion are one SQL
statement, so a question costs one round trip to the database, not seven.

Every search starts from the asking user's own documents (``documents_of``): another
user's passages are never candidates, whatever they say.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection

from webapp.accounts.models import User
from webapp.documents.models import Document

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


# The statements' parts: common table expressions over the parameters documents (the ids
# searched), vector (the question's), question (its text) and candidates (taken from each
# search).
#
# By meaning: the HNSW index's nearest, filtered to the documents after it searched (pgvector
# 0.6 has no iterative scan). When that leaves fewer than the documents hold (they are a
# sliver of everyone's passages), the exact nearest instead, which "+ 0" keeps off the
# index. One-time filters gate the two branches, so only one of them runs.
BY_MEANING = """
    approximate AS MATERIALIZED (
        SELECT p.id, p.document_id, p.embedding <=> %(vector)s::vector AS distance
        FROM documents_passage p
        WHERE p.document_id = ANY(%(documents)s)
        ORDER BY distance
        LIMIT %(candidates)s
    ),
    held AS (
        SELECT count(*) AS passages
        FROM (SELECT FROM documents_passage WHERE document_id = ANY(%(documents)s) LIMIT %(candidates)s) few
    ),
    exact AS (
        SELECT p.id, p.document_id, p.embedding <=> %(vector)s::vector AS distance
        FROM documents_passage p
        WHERE p.document_id = ANY(%(documents)s)
        ORDER BY (p.embedding <=> %(vector)s::vector) + 0
        LIMIT %(candidates)s
    ),
    by_meaning AS (
        SELECT id, document_id, distance, row_number() OVER (ORDER BY distance, id) AS rank
        FROM (
            SELECT * FROM approximate WHERE (SELECT count(*) FROM approximate) >= (SELECT passages FROM held)
            UNION ALL
            SELECT * FROM exact WHERE (SELECT count(*) FROM approximate) < (SELECT passages FROM held)
        ) nearest
    )
"""
# By words: the question's words as the passages' index holds them (stemmed, stop words left
# out), each quoted so that none is read as an operator; any of them matched through the GIN
# index. The passages matching the most of them come first (counted by what ts_delete takes
# out of the passage's vector: one call a passage, however many words), then the denser
# matches (ts_rank: ranking by ts_rank_cd's covers took longer than fetching the passages,
# and ranked the question set no better; docs/decisions.md).
BY_WORDS = r"""
    question AS MATERIALIZED (
        SELECT words, CASE WHEN cardinality(words) > 0 THEN array_to_string(ARRAY(
            SELECT '''' || replace(replace(word, '\', '\\'), '''', '''''') || '''' FROM unnest(words) word
        ), ' | ')::tsquery END AS any_word
        FROM (SELECT tsvector_to_array(to_tsvector('english', %(question)s)) AS words) asked
    ),
    by_words AS (
        SELECT id, document_id, matched, row_number() OVER (ORDER BY matched DESC, density DESC, id) AS rank
        FROM (
            SELECT p.id, p.document_id, length(p.search) - length(ts_delete(p.search, q.words)) AS matched,
                   ts_rank(p.search, q.any_word) AS density
            FROM question q JOIN documents_passage p ON p.search @@ q.any_word
            WHERE p.document_id = ANY(%(documents)s)
            ORDER BY matched DESC, density DESC, p.id
            LIMIT %(candidates)s
        ) kept
    )
"""
# Rows of every statement: id, document, similarity, words matched, question's words, score.
VECTOR_ONLY = f"WITH {BY_MEANING} SELECT id, document_id, 1 - distance, 0, 0, 0 FROM by_meaning ORDER BY rank"
WORDS_ONLY = f"""
    WITH {BY_WORDS}
    SELECT w.id, w.document_id, 1 - (p.embedding <=> %(vector)s::vector), w.matched,
           (SELECT cardinality(words) FROM question), 0
    FROM by_words w JOIN documents_passage p ON p.id = w.id
    ORDER BY w.rank
"""
# The fusion (parameters k and limit). The vector distance is computed again only for the
# passages kept. A passage the words found knows its words; one found by meaning alone knows
# none (as a source it stands on its similarity).
FUSED = f"""
    WITH {BY_MEANING}, {BY_WORDS},
    fused AS (
        SELECT coalesce(m.id, w.id) AS id, coalesce(m.document_id, w.document_id) AS document_id, w.matched,
               coalesce(1::float8 / (%(k)s + m.rank), 0) + coalesce(1::float8 / (%(k)s + w.rank), 0) AS score
        FROM by_meaning m FULL JOIN by_words w ON w.id = m.id
        ORDER BY score DESC, id
        LIMIT %(limit)s
    )
    SELECT f.id, f.document_id, 1 - (p.embedding <=> %(vector)s::vector), coalesce(f.matched, 0),
           CASE WHEN f.matched IS NULL THEN 0 ELSE (SELECT cardinality(words) FROM question) END, f.score
    FROM fused f JOIN documents_passage p ON p.id = f.id
    ORDER BY f.score DESC, f.id
"""


def _search(
    statement: str, *, document_ids: Sequence[int], vector: Sequence[float], **parameters: str | int
) -> list[Found]:
    """The passages one of the statements finds, in its order."""
    if not document_ids:
        return []
    values: dict[str, str | int | list[int]] = {
        "documents": list(document_ids),
        "vector": "[" + ",".join(f"{value:.9g}" for value in vector) + "]",  # 9 digits: a float32 exactly
        "candidates": CANDIDATES,
        "question": "",
        **parameters,
    }
    with connection.cursor() as cursor:
        # One round trip: sent together, the two statements are one transaction, which the
        # SET LOCAL lasts (Django's cursors bind parameters on the client, so a string of
        # several statements takes them).
        cursor.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}; {statement}", values)
        cursor.nextset()
        rows = cursor.fetchall()
    return [
        Found(
            passage_id=pk,
            document_id=document_id,
            similarity=similarity,
            matched_words=matched,
            question_words=words,
            score=score,
        )
        for pk, document_id, similarity, matched, words, score in rows
    ]


def vector_candidates(*, document_ids: Sequence[int], vector: Sequence[float]) -> list[Found]:
    """The passages nearest the question's vector, nearest first: the fused search's first half."""
    return _search(VECTOR_ONLY, document_ids=document_ids, vector=vector)


def keyword_candidates(*, document_ids: Sequence[int], question: str, vector: Sequence[float]) -> list[Found]:
    """The passages sharing the most of the question's words, then the denser matches first:
    the fused search's second half."""
    return _search(WORDS_ONLY, document_ids=document_ids, vector=vector, question=question)


def fused_candidates(*, document_ids: Sequence[int], question: str, vector: Sequence[float], limit: int) -> list[Found]:
    """Both searches and their fusion, best first, in one statement."""
    return _search(FUSED, document_ids=document_ids, vector=vector, question=question, k=RRF_K, limit=limit)


def passages_search(*, user: User, document_ids: Iterable[int], question: str, limit: int = 5) -> list[Found]:
    """The ``limit`` passages of the user's documents that best answer ``question``."""
    documents = documents_of(user=user, document_ids=document_ids)
    if not documents or not question.strip():
        return []
    return fused_candidates(document_ids=documents, question=question, vector=question_vector(question), limit=limit)
