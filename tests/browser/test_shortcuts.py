"""The chat pages' keyboard shortcuts, in a real browser: each does what the cheat sheet says."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import Parley
from tests.browser.test_chat import CODE_ANSWER, answered, log_in, orm, send, wait_for_status, wait_for_text
from webapp.accounts.models import User
from webapp.chat.models import Conversation, Message

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the cheat sheet lists, as a Linux or Windows user reads it (a Mac shows ⌘ for Ctrl).
CHEAT_SHEET = [
    ("Ctrl+Shift+O", "New chat"),
    ("Ctrl+K or /", "Search messages"),
    ("Esc", "Stop the answer being written"),
    ("Ctrl+Shift+C", "Copy the last answer"),
    ("Shift+Esc", "Focus the message box"),
    ("?", "Show these shortcuts"),
]


def focused(page: Page) -> str:
    return str(
        page.evaluate("document.activeElement.id || document.activeElement.name || document.activeElement.tagName")
    )


def test_keys_open_a_new_chat_and_focus_search_and_the_message_box_but_leave_typing_alone(
    parley_web: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    user = orm(lambda: make_user("keys@example.com"))
    conversation = answered(user, "Hello.")
    log_in(page, parley_web.url, user.email)
    conversation_url = f"{parley_web.url}/chat/{conversation.pk}/"
    page.goto(conversation_url)
    composer = page.locator("#composer textarea")

    # / and ? typed in the message box are text
    composer.press_sequentially("a/b?")
    assert composer.input_value() == "a/b?"
    assert focused(page) == "id_content"
    assert not page.locator("dialog#shortcuts[open]").count()

    # Ctrl+K from the message box, / from the page: the search box
    page.keyboard.press("Control+K")
    assert focused(page) == "q"
    page.keyboard.press("Shift+Escape")
    assert focused(page) == "id_content"
    page.locator(".chat-header h1").click()
    assert focused(page) == "BODY"
    page.keyboard.press("/")
    assert focused(page) == "q"
    assert page.locator(".chat-search input[type=search]").input_value() == "", "the / is not typed into the search box"

    # Ctrl+Shift+O, even from a field: a new chat
    composer.focus()
    page.keyboard.press("Control+Shift+O")
    page.wait_for_url(f"{parley_web.url}/chat/")


def test_ctrl_shift_c_copies_the_last_answer(parley_web: Parley, page: Page, make_user: Callable[..., User]) -> None:
    from playwright.sync_api import expect

    user = orm(lambda: make_user("copy-key@example.com"))
    conversation = answered(user, CODE_ANSWER)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=parley_web.url)
    log_in(page, parley_web.url, user.email)
    page.goto(f"{parley_web.url}/chat/{conversation.pk}/")
    page.evaluate("navigator.clipboard.writeText('something else')")

    page.locator("#composer textarea").focus()
    page.keyboard.press("Control+Shift+C")
    expect(page.locator(".message-assistant button.copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == CODE_ANSWER


def test_question_mark_shows_every_shortcut_in_a_dialog_that_esc_closes(
    parley_web: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    from playwright.sync_api import expect

    user = orm(lambda: make_user("sheet@example.com"))
    log_in(page, parley_web.url, user.email)
    page.goto(f"{parley_web.url}/chat/")
    page.locator(".chat-empty h1").click()

    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    rows = dialog.locator("dt").all_inner_texts()
    actions = dialog.locator("dd").all_inner_texts()
    assert [(" ".join(keys.split()), action) for keys, action in zip(rows, actions, strict=True)] == CHEAT_SHEET
    assert page.evaluate("document.activeElement.closest('dialog') !== null"), "the focus moves into the dialog"
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # the button in the sidebar opens it too, and the focus comes back to it after
    button = page.get_by_role("button", name="Keyboard shortcuts")
    button.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(button).to_be_focused()


def test_esc_stops_the_answer_being_written(parley: Parley, page: Page, make_user: Callable[..., User]) -> None:
    user = orm(lambda: make_user("esc@example.com"))
    conversation = orm(lambda: Conversation.objects.create(owner=user, max_tokens=800))
    log_in(page, parley.url, user.email)
    page.goto(f"{parley.url}/chat/{conversation.pk}/")

    send(page, "Now write a long essay about the history of sailing ships.")
    wait_for_status(page, "generating")
    wait_for_text(page, 40)
    assert focused(page) == "id_content", "Esc works from the message box the question was sent from"
    page.keyboard.press("Escape")
    wait_for_status(page, "interrupted", timeout=10_000)
    stopped = orm(lambda: Message.objects.get(conversation=conversation, role="assistant"))
    assert stopped.status == "interrupted"
    assert stopped.completion_tokens is not None
    assert stopped.completion_tokens < 800
