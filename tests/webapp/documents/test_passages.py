"""Passages: cut from a document's text while it is read, embedded, kept with their pages,
replaced when it is read again and gone with the document."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from inference.passages import split_passages
from tests.webapp.documents.corpus import PLANTED_FACT, filler_page, long_pages, read_document
from tests.webapp.documents.files import make_docx, make_pdf
from webapp.accounts.models import User
from webapp.documents.extraction import extract
from webapp.documents.models import Document, Passage
from webapp.documents.passages import embedder
from webapp.documents.tasks import extract_document
from webapp.jobs.models import Job
from webapp.vector_extension import MISSING, vector_extension_problem

pytestmark = pytest.mark.django_db


def test_passages_overlap_and_cut_between_words() -> None:
    tokenizer = embedder().tokenizer
    text = " ".join(f"word{number} unbelievably" for number in range(400))
    passages = split_passages(text, tokenizer, size=50, overlap=10)
    assert len(passages) > 5
    for passage in passages:
        assert passage.text == text[passage.start : passage.end]
        assert passage.text.startswith("word") or passage.text.startswith("unbelievably")
        assert not text[passage.end : passage.end + 1].isalnum()  # ends at a word's end
        assert len(tokenizer(passage.text, add_special_tokens=False)["input_ids"]) <= 50
    for before, after in itertools.pairwise(passages):
        assert after.start < before.end  # they overlap
    assert passages[-1].end == len(text)


def test_pages_and_headings_are_kept() -> None:
    extracted = extract("pdf", make_pdf(long_pages(pages=3, planted_on=2)))
    passages = split_passages(extracted.text, embedder().tokenizer, page_starts=extracted.page_starts)
    planted = next(p for p in passages if "Bartholomew Quince" in p.text)
    assert planted.page == 2
    assert {p.page for p in passages} == {1, 2, 3}
    markdown = extract(
        "markdown", b"# Terms\n\nPayment is due in thirty days.\n\n## Termination\n\nEither side may end it."
    )
    passages = split_passages(markdown.text, embedder().tokenizer, headings=markdown.headings, size=8, overlap=2)
    assert passages[0].heading == "Terms"
    assert passages[-1].heading == "Termination"
    assert passages[-1].page is None  # Markdown has no pages


def docx_with_headings(sections: list[tuple[str, int, list[str]]]) -> bytes:
    """A Word document of (heading, level, paragraphs) sections; level 0 is the Title style."""
    import io

    import docx

    document = docx.Document()
    for heading, level, paragraphs in sections:
        document.add_heading(heading, level=level)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_a_word_documents_headings_are_kept_on_its_passages(user: User) -> None:
    # each section longer than a passage, its telling sentence last, so passages start under it
    data = docx_with_headings(
        [
            ("Tenancy agreement", 0, [filler_page(1)]),
            ("Rent", 1, [filler_page(2), "  The rent is paid on the first day of each month.  "]),
            ("Ending   the tenancy", 2, [filler_page(3), "Either side may end it with two months' notice."]),
        ]
    )
    extracted = extract("docx", data)
    assert [title for _, title in extracted.headings] == ["Tenancy agreement", "Rent", "Ending   the tenancy"]
    for offset, title in extracted.headings:
        assert extracted.text[offset : offset + len(title)] == title
    document = read_document(user, "lease.docx", "docx", data)
    passages = list(document.passages.all())
    assert {p.heading for p in passages} == {"Tenancy agreement", "Rent", "Ending   the tenancy"}
    assert {p.heading for p in passages if "first day of each month" in p.text} == {"Rent"}
    assert {p.heading for p in passages if "two months' notice" in p.text} == {"Ending   the tenancy"}
    # a plain document's paragraphs are no headings
    assert extract("docx", make_docx(["Just text.", "More text."])).headings == ()


def test_reading_a_document_saves_its_passages_with_vectors(user: User) -> None:
    document = read_document(user, "minutes.pdf", "pdf", make_pdf(long_pages()))
    passages = list(document.passages.all())
    assert len(passages) >= 12
    planted = [p for p in passages if "Bartholomew Quince" in p.text]
    assert planted
    assert all(p.page == 7 for p in planted)
    for passage in passages:
        assert document.text[passage.start : passage.end] == passage.text
        assert len(passage.embedding) == 384
    assert PLANTED_FACT.rstrip(".") in document.text
    job = Job.objects.get(document=document)
    assert (job.state, job.done) == ("done", job.total)
    assert job.total > 1  # the batches of passages were steps of its progress


def test_reading_again_replaces_the_passages(user: User) -> None:
    document = read_document(user, "minutes.pdf", "pdf", make_pdf(long_pages(pages=3, planted_on=2)))
    first = set(document.passages.values_list("pk", flat=True))
    Document.objects.filter(pk=document.pk).update(original=make_pdf(["Only one short page about otters."]))
    job = Job.objects.create(owner=user, kind=Job.Kind.EXTRACT, document=document, total=1)
    extract_document.run(job.pk)
    again = list(document.passages.all())
    assert [p.text for p in again] == ["Only one short page about otters."]
    assert not first & {p.pk for p in again}


def test_deleting_a_document_removes_its_passages(user: User, make_user: Callable[..., User]) -> None:
    kept = read_document(make_user(), "other.pdf", "pdf", make_pdf(long_pages(pages=2, planted_on=1)))
    document = read_document(user, "minutes.pdf", "pdf", make_pdf(long_pages(pages=2, planted_on=1)))
    assert Passage.objects.filter(document=document).exists()
    document_id = document.pk
    document.delete()
    assert not Passage.objects.filter(document_id=document_id).exists()
    assert Passage.objects.filter(document=kept).exists()


def test_a_server_without_pgvector_is_named_with_the_fix() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        assert vector_extension_problem(cursor) is None  # the embedded server ships it

    class NoVectorCursor:  # what pg_available_extensions answers on a server without it
        def execute(self, sql: str) -> None:
            assert "pg_available_extensions" in sql

        def fetchone(self) -> None:
            return None

    problem = vector_extension_problem(NoVectorCursor())
    assert problem == MISSING
    assert "pgvector" in problem
    assert "CREATE EXTENSION vector" in problem
    assert "DATABASE_URL" in problem
