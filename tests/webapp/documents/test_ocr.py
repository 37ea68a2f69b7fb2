"""Scanned PDFs and images are read by OCR, by each engine: RapidOCR (its models shipped in
its wheel) and Tesseract (Debian's tesseract-ocr, which ./parley test installs)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import Settings

from tests.webapp.documents.corpus import read_document
from tests.webapp.documents.files import make_png, make_scanned_pdf
from webapp.accounts.models import User
from webapp.documents.extraction import ExtractionError, extract
from webapp.documents.models import Document
from webapp.documents.reading import page_reader
from webapp.documents.retrieval import keyword_candidates, question_vector
from webapp.documents.tasks import extract_document
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db

ENGINE_LABELS = {"rapidocr": "RapidOCR", "tesseract": "Tesseract 5"}


@pytest.fixture(params=list(ENGINE_LABELS))
def engine(request: pytest.FixtureRequest, settings: Settings) -> str:
    """The installation reads page images with this engine, as PARLEY_OCR_ENGINE chose it."""
    settings.PARLEY_OCR_ENGINE = request.param
    return str(request.param)


def test_a_scanned_pdf_comes_out_as_searchable_text(engine: str, user: User, logged_in_client: Client) -> None:
    scan = make_scanned_pdf([["Invoice number 4471", "Total due: 900 euros"], ["Payment within thirty days"]])
    with pytest.raises(ExtractionError, match="no extractable text: its pages are images"):
        extract("pdf", scan)  # no text layer: without OCR there is nothing …
    document = read_document(user, "scan.pdf", "pdf", scan)  # … the reading worker reads them
    for word in ("Invoice", "4471", "900", "euros", "Payment", "thirty", "days"):
        assert word in document.text
    assert (document.pages, document.ocr_pages) == (2, [1, 2])
    found = logged_in_client.get(reverse("documents:index"), {"q": "invoice"}, HTTP_HX_REQUEST="true")
    assert "scan.pdf" in found.content.decode()
    question = "When is payment due?"
    by_words = keyword_candidates(document_ids=[document.pk], question=question, vector=question_vector(question))
    assert "thirty days" in document.passages.get(pk=by_words[0].passage_id).text
    page = logged_in_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    assert f"Read by OCR, with {ENGINE_LABELS[engine]}" in page
    assert "pages 1, 2" in page


def test_a_png_uploads_and_is_read(engine: str, user: User, logged_in_client: Client) -> None:
    upload = SimpleUploadedFile("whiteboard.png", make_png(["Retrospective notes", "Ship the beta on Monday"]))
    logged_in_client.post(reverse("documents:upload"), {"files": [upload]})
    document = Document.objects.get(owner=user, name="whiteboard.png")
    assert document.kind == "image"
    extract_document.run(Job.objects.get(document=document).pk)
    document.refresh_from_db()
    assert document.status == "ready", document.error
    assert "Ship the beta on Monday" in document.text
    assert document.ocr_pages == [1]
    assert document.ocr_engine.startswith(ENGINE_LABELS[engine])


def test_an_image_that_is_not_an_image_is_refused_or_fails_clearly(user: User, logged_in_client: Client) -> None:
    text_named_png = SimpleUploadedFile("photo.png", b"just some words, not a picture")
    response = logged_in_client.post(reverse("documents:upload"), {"files": [text_named_png]}, follow=True)
    assert "The name says .png but the content is plain text" in response.content.decode()
    assert not Document.objects.filter(name="photo.png").exists()
    broken = make_png(["A line"])[:200]  # a PNG's start, its picture cut off
    document = Document.objects.create(
        owner=user, name="cut.png", kind="image", size=len(broken), sha256="c" * 64, original=broken
    )
    job = Job.objects.create(owner=user, kind="extract", document=document, total=1)
    extract_document.run(job.pk)
    document.refresh_from_db()
    assert document.status == "failed"
    assert "The image is damaged or not an image at all" in document.error


def test_a_pdf_whose_every_page_fails_ocr_fails_with_the_reason(engine: str, user: User) -> None:
    blank = make_scanned_pdf([[], []])
    with pytest.raises(ExtractionError, match="2 pages of images, but OCR found no text on any of them"):
        extract("pdf", blank, read_image=page_reader().read)


def test_ocr_progress_counts_pages_with_their_pace(user: User) -> None:
    seen: list[tuple[int, int]] = []
    extract(
        "pdf",
        make_scanned_pdf([["The first scanned page"], ["The second scanned page"]]),
        read_image=page_reader().read,
        on_ocr_page=lambda *a: seen.append(a),
    )
    assert seen == [(0, 2), (1, 2), (2, 2)]
    job = Job(
        owner=user, kind="extract", state="running", unit=Job.OCR_PAGES, done=6, total=40,
        started_at=timezone.now() - timedelta(minutes=2),
    )  # fmt: skip
    assert job.progress_text.startswith("Reading page images by OCR: 6 of 40 pages · 3.0 pages a minute")
