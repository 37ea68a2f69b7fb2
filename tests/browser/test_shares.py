"""Share links in a real browser: one person shares, another opens the link."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Parley
from tests.browser.test_chat import answered, log_in, orm, send
from webapp.chat.models import Message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWER = "Use a slice: `text[::-1]`."


def test_a_shared_snapshot_stays_as_it_was_shared_until_it_is_revoked(
    parley_web: Parley, page: Any, make_user: Any
) -> None:
    from playwright.sync_api import expect

    alice = orm(lambda: make_user("alice-shares@example.com"))
    bob = orm(lambda: make_user("bob-reads@example.com"))
    conversation = answered(alice, ANSWER)
    log_in(page, parley_web.url, alice.email)
    page.goto(f"{parley_web.url}/chat/{conversation.pk}/")
    page.locator(".chat-menu summary").click()
    page.get_by_role("button", name="Share a link to it as it is now").click()
    page.wait_for_url(f"{parley_web.url}/chat/shared/**")
    link = page.locator("input.share-link").input_value()
    assert link.startswith(f"{parley_web.url}/chat/shared/")

    reader = page.context.browser.new_context().new_page()
    log_in(reader, parley_web.url, bob.email)
    reader.goto(link)
    snapshot = reader.locator(".shared-conversation")
    expect(snapshot.locator("h1")).to_have_text("Reversing")
    expect(snapshot.locator(".message-user .message-body")).to_have_text(["How do I reverse?"])
    expect(snapshot.locator(".message-assistant .message-body code")).to_have_text("text[::-1]")
    shown = snapshot.inner_html()

    # Alice carries on; what Bob sees does not change.
    page.goto(f"{parley_web.url}/chat/{conversation.pk}/")
    send(page, "And a list?")
    page.locator(".message-user", has_text="And a list?").wait_for()
    assert orm(lambda: Message.objects.filter(conversation=conversation, content="And a list?").exists())
    reader.reload()
    assert reader.locator(".shared-conversation").inner_html() == shown
    assert "And a list?" not in reader.content()

    # Alice revokes the link; Bob gets a plain 404.
    page.goto(f"{parley_web.url}/chat/shared/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".flash")).to_contain_text("no longer works")
    expect(page.locator("input.share-link")).to_have_count(0)
    response = reader.goto(link)
    assert response is not None
    assert response.status == 404
    assert "Reversing" not in reader.content()
