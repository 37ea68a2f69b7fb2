"""A person chatting in a real browser, with the real model behind it."""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from django.db import connection
from django.utils.html import strip_tags

from tests.browser.conftest import Parley
from tests.conftest import PASSWORD
from webapp.accounts.models import User
from webapp.chat.models import Conversation, Message
from webapp.core.rendering import render_markdown

if TYPE_CHECKING:
    from playwright.sync_api import Page

T = TypeVar("T")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def orm(query: Callable[[], T]) -> T:
    """Run ORM code in its own thread: Playwright's sync API keeps an event loop running in
    this one, where Django refuses synchronous queries (and its connection would be left open)."""
    results: list[T] = []

    def run() -> None:
        try:
            results.append(query())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert results, "the query failed; see the thread's traceback above"
    return results[0]


def log_in(page: Page, url: str, email: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def send(page: Page, text: str) -> None:
    page.fill("#composer textarea", text)
    page.press("#composer textarea", "Enter")


def answer_text(page: Page) -> str:
    return str(page.locator(".message-assistant .message-body").last.inner_text())


def words(text: str) -> str:
    return " ".join(text.split())


def rendered_words(content: str) -> str:
    """The words a reader sees for saved markdown: list numbers, emphasis marks and fences
    are drawn, not shown as text, so the saved content is compared through the renderer."""
    return words(html.unescape(strip_tags(render_markdown(content))))


def wait_for_status(page: Page, status: str, timeout: float = 120_000) -> None:
    from playwright.sync_api import expect

    expect(page.locator(".message-assistant").last).to_have_attribute("data-status", status, timeout=timeout)


def wait_for_text(page: Page, characters: int, timeout: float = 60) -> None:
    # polled from here: the page's CSP (rightly) refuses the eval behind wait_for_function
    deadline = time.monotonic() + timeout
    while len(answer_text(page)) <= characters:
        assert time.monotonic() < deadline, f"the answer did not reach {characters} characters"
        page.wait_for_timeout(50)


FINAL = {"complete", "interrupted", "failed"}


class Frames:
    """The frames the page receives on its chat websockets, in order. Playwright calls
    ``_received`` on this thread whenever the test waits through it (``wait_for_timeout``),
    so what a test reads here does not depend on how often it looks."""

    def __init__(self, page: Page) -> None:
        self.received: list[dict[str, Any]] = []
        page.on("websocket", lambda socket: socket.on("framereceived", self._received))

    def _received(self, payload: str | bytes) -> None:
        self.received.append(json.loads(payload))

    def texts(self, message: int) -> list[str]:
        """The text of each frame that drew ``message`` (its saved state or a delta)."""
        return [
            words(html.unescape(strip_tags(frame["html"])))
            for frame in self.received
            if frame.get("message") == message and frame.get("type") in ("answer", "delta") and "html" in frame
        ]

    def ended(self, message: int) -> bool:
        return any(
            frame.get("message") == message and frame.get("type") in ("answer", "status") and frame["status"] in FINAL
            for frame in self.received
        )


def wait_for_frames(
    page: Page, frames: Frames, message: int, enough: Callable[[list[str]], bool], timeout: float = 60
) -> list[str]:
    """The texts the page drew for ``message``, once they are ``enough`` or the answer ended."""
    deadline = time.monotonic() + timeout
    while not enough(frames.texts(message)) and not frames.ended(message):
        assert time.monotonic() < deadline, f"the page drew only {frames.texts(message)} for message {message}"
        page.wait_for_timeout(50)
    return frames.texts(message)


def test_chatting_streaming_stop_regenerate_and_reload(
    parley: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    url = parley.url
    user = orm(lambda: make_user("browser@example.com"))
    frames = Frames(page)
    log_in(page, url, user.email)
    page.goto(f"{url}/chat/")

    # Send with Enter: the page moves to the new conversation and the answer grows.
    send(page, "Write three sentences about the ocean.")
    page.wait_for_url(f"{url}/chat/*/")
    conversation = orm(lambda: Conversation.objects.get(owner=user))
    wait_for_status(page, "generating")
    first = orm(lambda: Message.objects.filter(conversation=conversation, role="assistant").get())
    # every frame the page drew, however fast the model: not what a poll happened to catch
    drawn = wait_for_frames(page, frames, first.pk, lambda texts: len({len(text) for text in texts if text}) >= 2)
    lengths = [len(text) for text in drawn]
    assert len({n for n in lengths if n > 0}) >= 2, f"the answer should grow in steps, saw lengths {lengths}"
    wait_for_status(page, "complete")
    first = orm(lambda: Message.objects.filter(conversation=conversation, role="assistant").get())
    assert first.status == "complete"
    assert first.content
    assert page.locator(".message-user").count() == 1

    # Regenerate the last answer: a second version, shown as 2/2.
    page.locator(".message-assistant button.regenerate").last.click()
    page.locator(".version-count", has_text="2/2").wait_for()
    wait_for_status(page, "complete")
    assert orm(Message.objects.filter(conversation=conversation, role="assistant", status="complete").count) == 2

    # A long answer, stopped while it is being written, keeps the text shown.
    orm(lambda: Conversation.objects.filter(pk=conversation.pk).update(max_tokens=800))
    send(page, "Now write a long essay about the history of sailing ships.")
    wait_for_status(page, "generating")
    wait_for_text(page, 40)
    page.locator(".message-assistant button.stop").last.click()
    wait_for_status(page, "interrupted", timeout=10_000)
    stopped = orm(lambda: Message.objects.filter(conversation=conversation, role="assistant").latest("created_at"))
    assert stopped.status == "interrupted"
    assert stopped.completion_tokens is not None
    assert stopped.completion_tokens < 800
    assert rendered_words(stopped.content) == words(answer_text(page))

    # Reload in the middle of an answer: the page shows what was written and follows it to the end.
    send(page, "Tell me about lighthouses in two short paragraphs.")
    wait_for_status(page, "generating")
    wait_for_text(page, 20)
    page.reload()
    assert len(answer_text(page)) > 0, "after a reload the partial answer should be on the page at once"
    wait_for_status(page, "complete")
    last = orm(lambda: Message.objects.filter(conversation=conversation, role="assistant").latest("created_at"))
    assert last.status == "complete"
    assert rendered_words(last.content) == words(answer_text(page))


def test_the_page_reconnects_by_itself_when_the_connection_drops(
    parley: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    user = orm(lambda: make_user("reconnect@example.com"))
    # a bounded answer: long enough to outlast the restart, short enough for a loaded machine
    conversation = orm(lambda: Conversation.objects.create(owner=user, max_tokens=160))
    log_in(page, parley.url, user.email)
    page.goto(f"{parley.url}/chat/{conversation.pk}/")
    send(page, "Write a short story about a lighthouse keeper.")
    wait_for_status(page, "generating")
    wait_for_text(page, 10)
    parley.restart_web()  # the answer goes on in the worker meanwhile
    wait_for_status(page, "complete")
    answer = orm(lambda: Message.objects.get(conversation=conversation, role="assistant"))
    assert answer.status == "complete"
    assert rendered_words(answer.content) == words(answer_text(page))


def test_the_page_fetches_the_thread_only_when_it_cannot_draw_an_answer_otherwise(
    parley: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    user = orm(lambda: make_user("tabs@example.com"))
    conversation = orm(lambda: Conversation.objects.create(owner=user, max_tokens=60))
    frames = Frames(page)
    log_in(page, parley.url, user.email)
    conversation_url = f"{parley.url}/chat/{conversation.pk}/"
    page.goto(conversation_url)
    other_tab = page.context.new_page()
    other_tab.goto(conversation_url)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))

    send(page, "Write a long essay about the history of sailing ships.")  # cut at 60 tokens
    wait_for_status(page, "complete")
    answer = orm(lambda: Message.objects.get(conversation=conversation, role="assistant"))
    assert answer.status == "complete"
    assert rendered_words(answer.content) == words(answer_text(page))
    # The new answer is announced on the socket before the send's response arrives; the page
    # waits for that response instead of fetching the whole thread a second time.
    thread_url = f"{parley.url}/chat/{conversation.pk}/thread"
    assert f"POST {parley.url}/chat/{conversation.pk}/send" in requests
    assert not [r for r in requests if r.endswith(thread_url)], requests

    # The other tab sent nothing: it fetches the thread when the unknown answer is announced.
    wait_for_status(other_tab, "complete")
    assert other_tab.locator(".message-user").count() == 1
    assert words(answer_text(other_tab)) == words(answer_text(page))

    # Looking at the first version while the second is being written: the page keeps
    # showing the first, and fetches the thread once to learn that the second is not on it,
    # not again for each piece of the second.
    orm(lambda: Conversation.objects.filter(pk=conversation.pk).update(max_tokens=800))
    page.locator(".message-assistant button.regenerate").last.click()
    page.locator(".version-count", has_text="2/2").wait_for()
    wait_for_status(page, "generating")
    second = orm(lambda: Message.objects.filter(conversation=conversation, role="assistant").latest("created_at"))
    requests.clear()
    page.get_by_label("Previous version").click()
    page.locator(".version-count", has_text="1/2").wait_for()
    # The check lasts until pieces of the second have arrived while the first is shown,
    # however fast or slow the model writes them.
    drawn = len(frames.texts(second.pk))
    wait_for_frames(page, frames, second.pk, lambda texts: len(texts) >= drawn + 3)
    pieces = len(frames.texts(second.pk)) - drawn
    assert pieces >= 3, "the second version should still be written during the check"
    assert words(answer_text(page)) == rendered_words(answer.content)
    assert len([r for r in requests if r.endswith(thread_url)]) <= 1, requests


CODE_ANSWER = "Reverse it with a slice:\n\n```python\ndef reverse(text):\n    return text[::-1]\n```\n\nThat is all."


def answered(user: User, answer: str) -> Conversation:
    """A conversation of one question and its complete ``answer``."""

    def create() -> Conversation:
        conversation = Conversation.objects.create(owner=user, title="Reversing")
        question = Message.objects.create(conversation=conversation, role="user", content="How do I reverse?")
        Message.objects.create(
            conversation=conversation, role="assistant", parent=question, content=answer, status="complete"
        )
        return conversation

    return orm(create)


def test_an_answer_and_each_of_its_code_blocks_can_be_copied(
    parley_web: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    from playwright.sync_api import expect

    user = orm(lambda: make_user("copy@example.com"))
    conversation = answered(user, CODE_ANSWER)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=parley_web.url)
    log_in(page, parley_web.url, user.email)
    page.goto(f"{parley_web.url}/chat/{conversation.pk}/")

    answer = page.locator(".message-assistant")
    copy_code = answer.get_by_role("button", name="Copy code")
    assert copy_code.count() == 1
    copy_code.click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == "def reverse(text):\n    return text[::-1]\n"

    answer.get_by_role("button", name="Copy", exact=True).click()
    expect(answer.locator("button.copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == CODE_ANSWER


def test_the_copy_code_button_does_not_cover_a_long_first_line_on_a_phone(
    parley_web: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    user = orm(lambda: make_user("phone@example.com"))
    long_line = "def reverse_every_word_of_a_sentence(sentence): return ' '.join(w[::-1] for w in sentence.split())"
    conversation = answered(user, f"```python\n{long_line}\n```")
    page.set_viewport_size({"width": 400, "height": 800})
    log_in(page, parley_web.url, user.email)
    page.goto(f"{parley_web.url}/chat/{conversation.pk}/")

    button = page.get_by_role("button", name="Copy code").bounding_box()
    code = page.locator(".message-assistant pre").evaluate(
        """pre => {
            const range = document.createRange();
            range.selectNodeContents(pre);
            return {top: range.getClientRects()[0].top, overflows: pre.scrollWidth > pre.clientWidth};
        }"""
    )
    assert code["overflows"], "the line should be wider than the block, running under the button's corner"
    assert button is not None  # the button is shown
    assert button["y"] + button["height"] <= code["top"], (button, code)
