"""A job's live progress in the browser stops knocking once the server has said no for good."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import Parley
from tests.browser.test_chat import log_in, orm
from webapp.accounts.models import User
from webapp.documents.models import Document, Summary
from webapp.jobs.models import Job

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def a_document_being_summarized(owner: User) -> Document:
    document = Document.objects.create(
        owner=owner, name="notes.txt", kind="txt", size=5, sha256="0" * 64, original=b"notes",
        text="Notes of the day.", status=Document.Status.READY,
    )  # fmt: skip
    job = Job.objects.create(owner=owner, kind=Job.Kind.SUMMARY, document=document)  # no worker takes it
    Summary.objects.create(document=document, job=job, length="short", form="paragraph")
    return document


def test_a_jobs_progress_socket_closed_by_logging_out_is_not_opened_again(
    parley_web: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    user = orm(lambda: make_user("jobs@example.com"))
    document = orm(lambda: a_document_being_summarized(user))
    log_in(page, parley_web.url, user.email)
    opened: list[str] = []
    page.on("websocket", lambda socket: opened.append(socket.url))
    page.goto(f"{parley_web.url}/documents/{document.pk}/")
    progress = page.locator("[data-job-socket]")
    page.wait_for_function("() => document.querySelector('[data-job-socket]').dataset.watching")
    # the same browser logs out in another tab: the server closes that session's sockets
    other_tab = page.context.new_page()
    other_tab.goto(f"{parley_web.url}/")
    other_tab.click("summary[aria-label='Account menu']")
    other_tab.click("form[action$='/logout/'] button")
    other_tab.wait_for_url("**/login/**")
    page.wait_for_function("() => document.querySelector('[data-job-socket]').dataset.socket === 'closed'")
    assert progress.get_attribute("data-socket") == "closed"
    assert [url for url in opened if "/ws/jobs/" in url] == [opened[0]]  # one socket, never a second
