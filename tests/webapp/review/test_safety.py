"""Model output is untrusted: markup in it is inert in the queue, the item, the diff and the admin."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from tests.webapp.review.conftest import make_chat_answer, make_sentiment, make_summary
from webapp.accounts.models import User
from webapp.review.models import ReviewItem

pytestmark = pytest.mark.django_db

HOSTILE = (
    "Sure! <script>alert('xss')</script> "
    '<img src=x onerror="alert(1)"> '
    "[click me](javascript:alert(2)) "
    '<a href="javascript:alert(3)">link</a> '
    '<div hx-get="/accounts/logout/" hx-trigger="load">boom</div> '
    "<svg onload=alert(4)></svg>"
)


class Elements(HTMLParser):
    """Every element of a page with its attributes, and the text inside <script> tags."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)


def assert_inert(html: str) -> None:
    page = Elements()
    page.feed(html)
    assert not page.script_text, "an inline script made it into the page"
    for tag, attrs in page.tags:
        assert tag not in ("img", "svg") or "onerror" not in attrs, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), f"<{tag} {name}>"
            assert not (value or "").strip().lower().startswith("javascript:"), f"<{tag} {name}={value}>"
            assert not (name.startswith("hx-") and value in ("/accounts/logout/", "load")), f"<{tag} {name}>"
        if tag == "script":
            assert (attrs.get("src") or "").startswith(("/static/", "/admin/jsi18n/")), attrs  # only our own files
    assert "alert('xss')" in html.replace("&#x27;", "'") or "alert(&#x27;xss&#x27;)" in html  # shown, as text


@pytest.fixture
def hostile_items(user: User) -> list[ReviewItem]:
    chat = make_chat_answer(user, HOSTILE, question=HOSTILE, system_prompt=HOSTILE, rating=-1, comment=HOSTILE)
    summary = make_summary(user, HOSTILE, document_text=HOSTILE)
    (label,) = make_sentiment(user, [(HOSTILE, "negative", 0.3)])
    return [chat, summary, label]


def test_hostile_output_is_inert_in_the_queue_and_on_item_pages(
    reviewer_client: Client, hostile_items: list[ReviewItem]
) -> None:
    assert_inert(reviewer_client.get(reverse("review:queue")).content.decode())
    for item in hostile_items:
        assert_inert(reviewer_client.get(reverse("review:item", args=[item.pk])).content.decode())


def test_hostile_text_is_inert_in_the_diff_and_the_verdict_history(
    reviewer_client: Client, hostile_items: list[ReviewItem]
) -> None:
    chat = hostile_items[0]
    correction = HOSTILE.replace("Sure!", "<b onmouseover=alert(5)>Fixed</b>")
    diff = reviewer_client.post(reverse("review:diff", args=[chat.pk]), {"correction": correction})
    assert "&lt;b onmouseover=alert(5)&gt;" in diff.content.decode()
    assert_inert(diff.content.decode())
    reviewer_client.get(reverse("review:item", args=[chat.pk]))
    saved = reviewer_client.post(
        reverse("review:verdict", args=[chat.pk]),
        {"version": 0, "decision": "needs_fix", "correction": correction, "comment": HOSTILE, "tags": "<script>"},
    )
    assert saved.status_code == 302
    assert_inert(reviewer_client.get(reverse("review:item", args=[chat.pk])).content.decode())


def test_hostile_output_is_escaped_in_the_admin(admin_client: Client, hostile_items: list[ReviewItem]) -> None:
    assert_inert(admin_client.get(reverse("admin:review_reviewitem_changelist")).content.decode())
    for item in hostile_items:
        page = admin_client.get(reverse("admin:review_reviewitem_change", args=[item.pk])).content.decode()
        assert "&lt;script&gt;alert(" in page
        assert_inert(page)
