"""A reviewer working through the queue with the keyboard in a real browser."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import Parley
from tests.browser.test_chat import log_in, orm
from tests.webapp.review.conftest import make_chat_answer
from webapp.accounts.models import User
from webapp.review.models import ReviewItem, Verdict

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_two_items_reviewed_with_the_keyboard_are_recorded(
    parley_web: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    from playwright.sync_api import expect

    def setup() -> tuple[int, int]:
        owner = make_user("writer@example.com")
        make_user("lead@example.com", is_staff=True)
        first = make_chat_answer(owner, "Rivers flow **uphill**.", question="Where do rivers flow?", rating=-1)
        second = make_chat_answer(owner, "The capital of France is Lyon.", question="Capital of France?")
        return first.pk, second.pk

    first, second = orm(setup)
    log_in(page, parley_web.url, "lead@example.com")
    page.goto(f"{parley_web.url}/review/")
    expect(page.locator(".review-progress")).to_contain_text("0 reviewed · 2 remaining")

    page.keyboard.press("s")  # start: the thumbs-down comes first
    page.wait_for_url(f"**/review/items/{first}/")
    expect(page.locator(".review-output .output")).to_contain_text("Rivers flow uphill.")
    page.keyboard.press("4")
    expect(page.locator("input[name=rating][value='4']")).to_be_checked()
    page.keyboard.press("r")  # reject
    page.wait_for_url(f"**/review/items/{second}/")
    expect(page.locator(".flash")).to_contain_text("Saved: reject")

    page.keyboard.press("e")  # edit the answer in place
    correction = page.locator("textarea[name=correction]")
    expect(correction).to_be_focused()
    correction.fill("The capital of France is Paris.")
    expect(page.locator("#diff del")).to_have_text("Lyon")
    expect(page.locator("#diff ins")).to_have_text("Paris")
    page.keyboard.press("Escape")
    page.keyboard.press("a")  # typed outside the field: approve, with the correction
    page.wait_for_url("**/review/")
    expect(page.locator(".flash")).to_contain_text("Nothing left to review")
    expect(page.locator(".review-progress")).to_contain_text("2 reviewed · 0 remaining")

    def recorded() -> list[tuple[int, str, int | None, str, str]]:
        verdicts = Verdict.objects.select_related("reviewer").order_by("created_at")
        return [(v.item_id, v.decision, v.rating, v.correction, v.reviewer.email) for v in verdicts]

    assert orm(recorded) == [
        (first, "reject", 4, "", "lead@example.com"),
        (second, "approve", None, "The capital of France is Paris.", "lead@example.com"),
    ]
    assert orm(lambda: ReviewItem.objects.filter(claimed_by__isnull=False).count()) == 0
