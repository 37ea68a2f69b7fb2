"""How the chat page looks in a real browser: both colour themes readable, and a phone's width."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import pytest

from tests.browser.conftest import Parley
from tests.browser.test_chat import answered, log_in, orm
from webapp.accounts.models import User

if TYPE_CHECKING:
    from playwright.sync_api import FloatRect, Page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWER = (
    "See [the docs](https://example.com/docs) first.\n\n"
    '```python\n# reverse a text\ndef reverse(text, times=2):\n    return "done: " + text[::-1] * times\n```\n'
)

# Each element's text colour and the colour it is drawn on: the first background of it or
# of an ancestor that is not transparent (the root's, which fills the page, last).
COLOURS = """
selector => [...document.querySelectorAll(selector)].map(element => {
    const transparent = (colour) => /^(transparent|rgba\\(0, 0, 0, 0\\))$/.test(colour);
    let painted = element;
    while (painted && transparent(getComputedStyle(painted).backgroundColor)) painted = painted.parentElement;
    return {
        text: getComputedStyle(element).color,
        background: getComputedStyle(painted || document.documentElement).backgroundColor,
        what: element.className || element.tagName,
    };
})
"""


def rgb(colour: str) -> tuple[float, float, float]:
    match = re.fullmatch(r"rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)", colour)
    assert match, f"not an sRGB colour: {colour}"
    assert match.group(4) in (None, "1"), f"a translucent colour: {colour}"
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance."""
    channels = [c / 255 for c in rgb(colour)]
    red, green, blue = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_chat_page_follows_the_system_theme_and_its_text_is_readable(
    parley_web: Parley, page: Page, make_user: Callable[..., User], scheme: Literal["light", "dark"]
) -> None:
    user = orm(lambda: make_user(f"{scheme}@example.com"))
    conversation = answered(user, ANSWER)
    page.emulate_media(color_scheme=scheme)
    log_in(page, parley_web.url, user.email)
    page.goto(f"{parley_web.url}/chat/{conversation.pk}/")

    [body] = page.evaluate(COLOURS, "body")
    if scheme == "dark":
        assert luminance(body["background"]) < 0.05, f"the page should be dark: {body}"
        assert luminance(body["text"]) > 0.6, f"the text should be light: {body}"
    else:
        assert luminance(body["background"]) > 0.85, f"the page should be light: {body}"
        assert luminance(body["text"]) < 0.05, f"the text should be dark: {body}"

    checked = {
        "body text": [body, *page.evaluate(COLOURS, ".message-assistant .message-body p")],
        "muted text": page.evaluate(COLOURS, ".chat-sidebar .muted"),
        "links": page.evaluate(COLOURS, ".message-body a[href], .chat-sidebar a.muted"),
        "code": page.evaluate(COLOURS, ".message-body pre, .message-body pre span"),
    }
    assert len(checked["code"]) > 5, "the code should be highlighted, in several colours"
    assert len({sample["text"] for sample in checked["code"]}) > 2, checked["code"]
    low = [
        (kind, sample, round(contrast(sample["text"], sample["background"]), 2))
        for kind, samples in checked.items()
        for sample in samples
        if contrast(sample["text"], sample["background"]) < 4.5
    ]
    assert all(checked.values()), checked
    assert not low, f"under 4.5:1 in the {scheme} theme: {low}"


WIDE_ANSWER = (
    "A long line of code, a long word and a table:\n\n"
    "```python\n"
    "def reverse_every_word_of_a_sentence(sentence): return ' '.join(w[::-1] for w in sentence.split())\n"
    "```\n\n"
    "Pneumonoultramicroscopicsilicovolcanoconiosis_and_some_more_letters_without_a_break_anywhere\n\n"
    "| column one | column two | column three | column four | column five |\n"
    "| --- | --- | --- | --- | --- |\n"
    "| a long cell of text | another long cell | a third long cell | a fourth long cell | the fifth |\n"
)


def within_the_screen(box: FloatRect | None, width: int = 360) -> FloatRect:
    assert box is not None, "the element is not shown"
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= width, box
    return box


def test_the_chat_page_fits_a_phone_360_pixels_wide(
    parley_web: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    from playwright.sync_api import expect

    user = orm(lambda: make_user("a-rather-long-address-for-a-small-screen@example.com"))
    conversation = answered(user, WIDE_ANSWER)
    orm(lambda: type(conversation).objects.filter(pk=conversation.pk).update(title="A title far too long " * 4))
    page.set_viewport_size({"width": 360, "height": 740})
    log_in(page, parley_web.url, user.email)
    page.goto(f"{parley_web.url}/chat/{conversation.pk}/")

    def page_width() -> dict[str, int]:
        return dict(page.evaluate("({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"))

    width = page_width()
    assert width["scroll"] <= width["inner"], f"the page scrolls sideways: {width}"

    # the sidebar is stacked above the conversation, not beside it
    sidebar = page.locator(".chat-sidebar").bounding_box()
    main = page.locator(".chat-main").bounding_box()
    assert sidebar is not None
    assert main is not None
    assert sidebar["width"] <= 360, sidebar
    assert main["width"] <= 360, main
    assert sidebar["y"] + sidebar["height"] <= main["y"] + 1, (sidebar, main)

    # the composer and its button are on the screen, side by side, and they send
    composer = page.locator("#composer textarea")
    send_button = page.locator("#composer button[type=submit]")
    expect(composer).to_be_in_viewport()
    expect(send_button).to_be_in_viewport()
    within_the_screen(composer.bounding_box())
    button_box = within_the_screen(send_button.bounding_box())
    assert button_box["width"] >= 44, "the button is big enough to tap"
    composer.fill("A question typed on a phone")
    send_button.click()
    expect(page.locator(".message-user .message-body", has_text="A question typed on a phone")).to_be_visible()
    expect(composer).to_be_in_viewport()
    width = page_width()
    assert width["scroll"] <= width["inner"], f"the page scrolls sideways after a send: {width}"

    # the conversation's menus open within the screen
    for menu in (".chat-menu", ".chat-settings"):
        page.locator(f"{menu} > summary").click()
        width = page_width()
        assert width["scroll"] <= width["inner"], f"{menu} makes the page scroll sideways: {width}"
        within_the_screen(page.locator(f"{menu} > .menu, {menu} > form").first.bounding_box())
        page.locator(f"{menu} > summary").click()
