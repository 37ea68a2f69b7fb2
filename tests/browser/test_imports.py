"""Importing in a real browser: a conversation exported as JSON comes back through the import page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Parley
from tests.browser.test_chat import answered, log_in, orm
from webapp.chat.models import Conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWER = "Use a slice: `text[::-1]`, or `''.join(reversed(text))`."


def test_an_exported_conversation_imported_through_the_page_is_listed_and_the_same(
    parley_web: Parley, page: Any, make_user: Any
) -> None:
    from playwright.sync_api import expect

    user = orm(lambda: make_user("importer@example.com"))
    original = answered(user, ANSWER)
    log_in(page, parley_web.url, user.email)
    page.goto(f"{parley_web.url}/chat/{original.pk}/")
    shown = page.locator("#thread .message-body").all_inner_texts()
    page.locator(".chat-menu summary").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export as JSON (every version)").click()
    exported = Path(download_info.value.path())
    assert json.loads(exported.read_text())["format"] == "parley.conversation"

    page.get_by_role("link", name="Import", exact=True).click()
    page.wait_for_url(f"{parley_web.url}/chat/import")
    page.set_input_files("input[type=file]", str(exported))
    page.get_by_role("button", name="Import", exact=True).click()
    result = page.locator("#import-result")
    expect(result).to_contain_text("Imported from Parley")
    expect(result).to_contain_text("1 conversation and 2 messages.")
    expect(result).to_contain_text("Nothing was left out.")

    result.get_by_role("link", name="Reversing").click()
    imported = orm(lambda: Conversation.objects.filter(owner=user).exclude(pk=original.pk).get())
    page.wait_for_url(f"{parley_web.url}/chat/{imported.pk}/")
    expect(page.locator("#conversation-list a", has_text="Reversing")).to_have_count(2)
    expect(page.locator(".chat-header h1")).to_have_text("Reversing")
    assert page.locator("#thread .message-body").all_inner_texts() == shown
    expect(page.locator(".message-assistant .message-body code").first).to_have_text("text[::-1]")
