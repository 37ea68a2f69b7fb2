"""A person asks about a document in a real browser, with the real model and embedding model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import Parley
from tests.browser.test_chat import log_in, orm, send
from tests.processes import process_env
from tests.webapp.documents.corpus import long_pages, read_document
from tests.webapp.documents.files import make_pdf
from tests.webapp.jobs.workers import start_celery, stop_celery
from webapp.accounts.models import User
from webapp.chat.models import Conversation
from webapp.documents.models import Document
from webapp.documents.services import collection_create

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_asking_about_a_document_shows_the_cited_passage_and_opens_it(
    parley: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    user = orm(lambda: make_user("reader@example.com"))
    minutes = orm(lambda: read_document(user, "minutes.pdf", "pdf", make_pdf(long_pages())))
    log_in(page, parley.url, user.email)
    page.goto(f"{parley.url}/documents/{minutes.pk}/")
    page.get_by_role("button", name="Ask about this document").click()
    page.wait_for_url(f"{parley.url}/chat/*/")
    assert page.locator(".chat-documents summary").inner_text() == "Documents (1)"
    orm(lambda: Conversation.objects.filter(owner=user).update(max_tokens=24, temperature=0))  # a short answer

    send(page, "Who repainted the lighthouse on Gull Rock?")
    source = page.locator(".message-assistant .answer-sources .source a").first
    source.wait_for(timeout=120_000)
    assert source.inner_text() == "[1] minutes.pdf, page 7"
    assert "Bartholomew Quince" in page.locator(".message-assistant .source-text").first.inner_text()
    assert "Answered from the" in page.locator(".message-assistant .grounding-mode").inner_text()

    source.click()
    page.wait_for_url(f"{parley.url}/documents/{minutes.pk}/?passage=*")
    marked = page.locator("mark.passage")
    assert "Bartholomew Quince" in marked.inner_text()
    assert marked.is_visible()
    assert page.locator("h2", has_text="Text, page 7").count() == 1


def test_documents_and_a_collection_are_attached_from_the_composer_before_the_first_message(
    parley_web: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    from playwright.sync_api import expect

    user = orm(lambda: make_user("composer@example.com"))

    def make() -> None:
        for name in ("handbook.txt", "rota.txt"):
            Document.objects.create(
                owner=user, name=name, kind="text", size=1, sha256=name, original=b"x", status="ready"
            )
        collection_create(owner=user, name="Staff papers", document_ids=[Document.objects.get(name="rota.txt").pk])

    orm(make)
    log_in(page, parley_web.url, user.email)
    page.goto(f"{parley_web.url}/chat/")
    attach = page.locator(".composer-attach")
    expect(attach.get_by_label("handbook.txt")).to_be_hidden()  # folded until asked for
    attach.locator("summary").click()
    attach.get_by_label("handbook.txt").check()
    attach.get_by_label("Staff papers").check()
    send(page, "Who opens on Monday?")
    page.wait_for_url(f"{parley_web.url}/chat/*/")
    expect(page.locator(".chat-documents summary")).to_have_text("Documents (1) · 1 collection")
    page.locator(".chat-documents summary").click()
    panel = page.locator(".chat-documents .attached-documents")
    expect(panel).to_contain_text("handbook.txt")
    expect(panel.locator(".attached-collection")).to_contain_text("Collection Staff papers (1 document)")
    expect(page.locator(".composer-attach")).to_have_count(0)  # a conversation attaches from its panel


def test_a_document_page_shows_the_text_once_its_reading_ends(
    parley_web: Parley, page: Page, make_user: Callable[..., User], tmp_path: Path
) -> None:
    """The owner opens the page while the upload waits for a reading worker; when the worker
    has read it, the page shows the text without the owner reloading it."""
    from playwright.sync_api import expect

    user = orm(lambda: make_user("waiting@example.com"))
    notes = tmp_path / "harbour-notes.txt"
    notes.write_text("The harbour master moved the ferry timetable to the spring schedule.\n")
    log_in(page, parley_web.url, user.email)
    page.goto(f"{parley_web.url}/documents/")
    page.set_input_files("#upload-files", str(notes))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_load_state()
    document = orm(lambda: Document.objects.get(owner=user, name="harbour-notes.txt"))
    page.goto(f"{parley_web.url}/documents/{document.pk}/")
    expect(page.get_by_role("button", name="Cancel reading")).to_be_visible()
    assert page.locator(".text-preview").count() == 0

    worker = start_celery(process_env(), queues="reading")
    try:
        expect(page.locator(".text-preview")).to_contain_text("ferry timetable", timeout=120_000)
        expect(page.get_by_role("button", name="Cancel reading")).to_have_count(0)
    finally:
        stop_celery(worker)
