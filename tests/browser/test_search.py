"""Searching messages and the model's titles, in a real browser."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import Parley
from tests.browser.test_chat import log_in, orm, send, wait_for_status
from webapp.accounts.models import User
from webapp.chat.models import Conversation, Message

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def long_conversation_with_two_versions(user: User) -> tuple[Conversation, Message, Message]:
    """Thirty exchanges; the first answer has two versions, the second one shown. The
    first version holds the word searched for, and a script."""

    def create() -> tuple[Conversation, Message, Message]:
        conversation = Conversation.objects.create(owner=user, title="Colours")
        question = Message.objects.create(conversation=conversation, role="user", content="Name a colour.")
        hidden = Message.objects.create(
            conversation=conversation, parent=question, role="assistant", status="complete",
            content='Vermilion. <script>window.pwned = true</script> <img src=x onerror="window.pwned = true">',
        )  # fmt: skip
        shown = Message.objects.create(
            conversation=conversation, parent=question, role="assistant", status="complete", content="Cobalt."
        )
        parent = shown
        for index in range(30):
            asked = Message.objects.create(
                conversation=conversation, parent=parent, role="user", content=f"More {index}"
            )
            parent = Message.objects.create(
                conversation=conversation, parent=asked, role="assistant", status="complete",
                content=f"Another colour, number {index}.\n\n" + "Filler line.\n\n" * 5,
            )  # fmt: skip
        conversation.current_leaf = parent
        conversation.save()
        return conversation, hidden, shown

    return orm(create)


def test_search_finds_a_message_on_another_branch_and_opens_it_highlighted(
    parley_web: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    from playwright.sync_api import expect

    user = orm(lambda: make_user("search@example.com"))
    conversation, hidden, shown = long_conversation_with_two_versions(user)
    other = orm(lambda: make_user("other@example.com"))
    long_conversation_with_two_versions(other)  # the same words, never found
    log_in(page, parley_web.url, user.email)
    page.goto(f"{parley_web.url}/chat/")

    page.keyboard.press("Control+K")  # from the message box, which has the focus
    page.keyboard.type("vermilion role:assistant")
    hit = page.locator(".search-results .message-hit")
    expect(hit).to_have_count(1)
    expect(hit.locator(".hit-title")).to_have_text("Colours")
    expect(hit.locator(".hit-meta")).to_contain_text("Answer")
    expect(hit.locator("mark")).to_have_text("Vermilion")
    assert hit.locator(".hit-snippet script, .hit-snippet img").count() == 0

    hit.click()
    page.wait_for_url(f"**/chat/{conversation.pk}/?message={hidden.pk}#message-{hidden.pk}")
    found = page.locator(f"#message-{hidden.pk}")
    expect(found).to_have_class("message message-assistant message-found")
    expect(found).to_be_in_viewport()
    expect(found.locator(".message-body")).to_contain_text("Vermilion")
    expect(found.locator(".version-count")).to_have_text("1/2")  # the version that holds it is shown
    assert page.locator(f"#message-{shown.pk}").count() == 0
    assert page.evaluate("window.pwned === undefined")


def test_a_bad_search_says_why_and_lists_nothing(
    parley_web: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    from playwright.sync_api import expect

    user = orm(lambda: make_user("bad-search@example.com"))
    long_conversation_with_two_versions(user)
    log_in(page, parley_web.url, user.email)
    page.goto(f"{parley_web.url}/chat/")
    page.fill(".chat-search input[type=search]", "colour after:2026-02-31")
    expect(page.locator(".search-results [role=alert]")).to_contain_text("is not a date")
    expect(page.locator(".search-results .message-hit")).to_have_count(0)
    page.fill(".chat-search input[type=search]", "-- !!")
    expect(page.locator(".search-results [role=alert]")).to_contain_text("Add a word to search for")
    page.fill(".chat-search input[type=search]", "")
    expect(page.locator("#conversation-list a", has_text="Colours")).to_have_count(1)


def test_the_first_answer_titles_the_conversation_without_a_reload(
    parley: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    from playwright.sync_api import expect

    user = orm(lambda: make_user("titles@example.com"))
    log_in(page, parley.url, user.email)
    page.goto(f"{parley.url}/chat/")
    question = "How do I bake bread at home?"
    send(page, question)
    page.wait_for_url("**/chat/*/")
    expect(page.locator("#conversation-title")).to_have_text(question)
    page.evaluate("document.body.dataset.sameLoad = 'yes'")
    wait_for_status(page, "complete")
    expect(page.locator("#conversation-title")).not_to_have_text(question, timeout=120_000)
    title = orm(lambda: Conversation.objects.get(owner=user)).title
    assert orm(lambda: Conversation.objects.get(owner=user)).title_source == "model"
    expect(page.locator("#conversation-title")).to_have_text(title)
    expect(page.locator('#conversation-list a[aria-current="page"]')).to_have_text(title)
    assert page.title() == f"{title} · Parley"
    assert page.evaluate("document.body.dataset.sameLoad") == "yes"  # no reload
