"""Retrieval over a user's documents: nearest vectors and full text, fused, and never
another user's passages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.webapp.documents.corpus import long_pages, read_document
from tests.webapp.documents.files import make_pdf
from webapp.accounts.models import User
from webapp.documents.models import EMBEDDING_DIMENSIONS, Document, Passage
from webapp.documents.retrieval import (
    fused_candidates,
    keyword_candidates,
    passages_search,
    question_vector,
    vector_candidates,
)

pytestmark = pytest.mark.django_db

PART_NUMBER = "Replacement hinge part QX-7731-B is stocked in aisle four."
DOGS = (
    "Employees may bring their dogs into the building every Friday. A dog must stay on a lead in the "
    "corridors, and owners clean up after their animals."
)


@pytest.fixture
def minutes(user: User) -> Document:
    return read_document(user, "minutes.pdf", "pdf", make_pdf(long_pages()))


@pytest.fixture
def handbook(user: User) -> Document:
    pages = long_pages(pages=4, planted_on=2, fact=PART_NUMBER, seed=1)
    pages[3] = pages[3][: len(pages[3]) // 2] + " " + DOGS + " " + pages[3][len(pages[3]) // 2 :]
    return read_document(user, "handbook.pdf", "pdf", make_pdf(pages))


def passage_of(found_id: int) -> Passage:
    return Passage.objects.select_related("document").get(pk=found_id)


def test_a_fact_in_the_middle_of_a_long_document_is_found_with_its_page(
    user: User, minutes: Document, handbook: Document
) -> None:
    found = passages_search(
        user=user, document_ids=[minutes.pk, handbook.pk], question="Who repainted the lighthouse on Gull Rock?"
    )
    best = passage_of(found[0].passage_id)
    assert "Bartholomew Quince" in best.text
    assert (best.document, best.page) == (minutes, 7)
    assert found[0].supports


def test_a_question_by_its_words_alone_finds_its_passage(user: User, minutes: Document, handbook: Document) -> None:
    documents = [minutes.pk, handbook.pk]
    question = "QX-7731-B"
    by_words = keyword_candidates(document_ids=documents, question=question, vector=question_vector(question))
    assert PART_NUMBER.rstrip(".") in passage_of(by_words[0].passage_id).text
    found = passages_search(user=user, document_ids=documents, question=question)
    assert any(PART_NUMBER.rstrip(".") in passage_of(f.passage_id).text for f in found)
    assert found[0].supports


def test_a_question_in_other_words_finds_its_passage(user: User, minutes: Document, handbook: Document) -> None:
    documents = [minutes.pk, handbook.pk]
    question = "Are pets allowed in the workplace?"
    vector = question_vector(question)
    by_words = keyword_candidates(document_ids=documents, question=question, vector=vector)
    assert not any("dogs" in passage_of(f.passage_id).text for f in by_words)  # no word in common
    by_meaning = vector_candidates(document_ids=documents, vector=vector)
    assert "dogs" in passage_of(by_meaning[0].passage_id).text
    found = passages_search(user=user, document_ids=documents, question=question)
    assert any("dogs" in passage_of(f.passage_id).text for f in found)


def test_a_question_the_documents_do_not_answer_finds_no_support(user: User, minutes: Document) -> None:
    found = passages_search(user=user, document_ids=[minutes.pk], question="What is the boiling point of mercury?")
    assert found  # the nearest passages are still given …
    assert not any(f.supports for f in found)  # … but none is close enough to cite


def test_another_users_passages_are_never_retrieved(
    user: User, make_user: Callable[..., User], minutes: Document
) -> None:
    other = make_user()
    theirs = read_document(other, "minutes.pdf", "pdf", make_pdf(long_pages()))  # the very same text
    question = "Who repainted the lighthouse on Gull Rock?"
    found = passages_search(user=user, document_ids=[minutes.pk, theirs.pk], question=question, limit=50)
    assert found
    assert {f.document_id for f in found} == {minutes.pk}
    assert passages_search(user=user, document_ids=[theirs.pk], question=question) == []
    assert {f.document_id for f in passages_search(user=other, document_ids=[theirs.pk], question=question)} == {
        theirs.pk
    }


def written_document(owner: User, name: str, passages: list[tuple[str, list[float]]]) -> Document:
    """A read document whose passages are given as (text, vector), with no model to embed them."""
    document = Document.objects.create(
        owner=owner, name=name, kind="text", size=0, sha256="0" * 64, original=b"", status=Document.Status.READY
    )
    Passage.objects.bulk_create(
        Passage(document=document, index=index, start=0, end=0, text=text, embedding=vector)
        for index, (text, vector) in enumerate(passages)
    )
    return document


def leaning(toward: int, by: float) -> list[float]:
    """A unit-length vector with ``by`` of its length on axis ``toward`` and the rest spread evenly."""
    rest = ((1 - by * by) / (EMBEDDING_DIMENSIONS - 1)) ** 0.5
    return [by if axis == toward else rest for axis in range(EMBEDDING_DIMENSIONS)]


def test_the_nearest_of_a_few_documents_among_many_are_found_exactly(
    user: User, make_user: Callable[..., User]
) -> None:
    # Another user's 300 passages are all nearer the question than any of ours, so the
    # index's candidates hold none of ours: the search falls back to the exact nearest.
    question = [1.0] + [0.0] * (EMBEDDING_DIMENSIONS - 1)
    written_document(make_user(), "theirs.txt", [(f"crowd {n}", leaning(0, 0.99)) for n in range(300)])
    ours = written_document(user, "ours.txt", [(f"ours {n}", leaning(0, 0.1 * n)) for n in range(1, 9)])
    found = vector_candidates(document_ids=[ours.pk], vector=question)
    assert [passage_of(f.passage_id).text for f in found] == [f"ours {n}" for n in range(8, 0, -1)]  # nearest first
    assert [round(f.similarity, 3) for f in found] == [round(0.1 * n, 3) for n in range(8, 0, -1)]


def test_a_question_of_stop_words_is_answered_by_meaning_alone(user: User) -> None:
    ours = written_document(user, "ours.txt", [(f"passage {n}", leaning(n, 0.5)) for n in range(3)])
    assert keyword_candidates(document_ids=[ours.pk], question="what is it that", vector=leaning(0, 1)) == []
    found = fused_candidates(document_ids=[ours.pk], question="what is it that", vector=leaning(0, 1), limit=5)
    assert len(found) == 3
    assert passage_of(found[0].passage_id).text == "passage 0"
    assert {f.question_words for f in found} == {0}


def test_quotes_and_backslashes_in_a_question_are_words_not_syntax(user: User) -> None:
    text = "O'Brien keeps the key to C:\\depot under the mat."
    ours = written_document(user, "ours.txt", [(text, leaning(0, 0.5)), ("Nothing here.", leaning(1, 0.5))])
    question = "Where is O'Brien's key to C:\\depot? & | ! <->"
    by_words = keyword_candidates(document_ids=[ours.pk], question=question, vector=leaning(2, 1))
    assert [passage_of(f.passage_id).text for f in by_words] == [text]
    assert by_words[0].matched_words >= 2
