"""Share links: a read-only copy of a conversation's shown branch behind an unguessable URL."""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from tests.webapp.chat.conftest import finish
from webapp.chat import services
from webapp.chat.models import Conversation, Message, SharedConversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(converse: Any) -> Conversation:
    """The user's conversation whose answer was regenerated; the second version is shown."""
    conversation, first = converse("What is the capital of France?")
    finish(first, "The first version: Lyon.")
    finish(services.message_regenerate(answer=first), "The second version: Paris.")
    conversation.refresh_from_db()
    return conversation


@pytest.fixture
def other_client(make_user: Any) -> Client:
    client = Client()
    client.force_login(make_user("bob@example.com"))
    return client


def share(client: Client, conversation: Conversation) -> SharedConversation:
    response = client.post(reverse("chat:share", args=[conversation.pk]))
    shared = SharedConversation.objects.latest("pk")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('chat:shared_list')}#share-{shared.pk}"
    return shared


def link(shared: SharedConversation) -> str:
    return reverse("chat:shared", args=[shared.token])


def shown(client: Client, shared: SharedConversation) -> str:
    """What the page shows of the snapshot (the rest of the page holds a fresh CSRF token)."""
    html = client.get(link(shared)).content.decode()
    start = html.index('<article class="shared-conversation">')
    return html[start : html.index("</article>", start)]


def test_sharing_copies_the_branch_shown_as_it_is_now(
    logged_in_client: Client, conversation: Conversation, user: Any
) -> None:
    shared = share(logged_in_client, conversation)
    assert (shared.owner, shared.conversation, shared.title) == (user, conversation, conversation.title)
    assert [(m["role"], m["content"], m["status"]) for m in shared.messages] == [
        ("user", "What is the capital of France?", "complete"),
        ("assistant", "The second version: Paris.", "complete"),
    ]
    assert shared.messages[1]["model_name"] == "tiny-model"
    assert shared.revoked_at is None


def test_a_share_token_is_long_random_and_new_each_time(logged_in_client: Client, conversation: Conversation) -> None:
    first, second = share(logged_in_client, conversation), share(logged_in_client, conversation)
    assert len(first.token) >= 32
    assert first.token != second.token


def test_any_signed_in_user_with_the_link_sees_the_snapshot(
    logged_in_client: Client, other_client: Client, conversation: Conversation
) -> None:
    shared = share(logged_in_client, conversation)
    response = other_client.get(link(shared))
    assert response.status_code == 200
    html = response.content.decode()
    assert conversation.title in html
    assert "What is the capital of France?" in html
    assert "The second version: Paris." in html
    assert "Lyon" not in html
    assert "no-store" in response["Cache-Control"]
    assert response["X-Robots-Tag"] == "noindex, nofollow"


def test_messages_written_after_sharing_never_show(
    logged_in_client: Client, other_client: Client, conversation: Conversation
) -> None:
    shared = share(logged_in_client, conversation)
    before = shown(other_client, shared)
    finish(services.message_send(conversation=conversation, content="A later question"), "A later answer")
    Message.objects.filter(conversation=conversation, content="The second version: Paris.").update(content="Edited")
    after = shown(other_client, shared)
    assert after == before
    assert "A later" not in after


def test_the_snapshot_outlives_its_conversation(
    logged_in_client: Client, other_client: Client, conversation: Conversation
) -> None:
    shared = share(logged_in_client, conversation)
    services.conversation_delete(conversation=conversation)
    shared.refresh_from_db()
    assert shared.conversation is None
    assert "The second version: Paris." in shown(other_client, shared)
    listing = logged_in_client.get(reverse("chat:shared_list")).content.decode()
    assert "(conversation deleted)" in listing


class Markup(HTMLParser):
    """Every tag and attribute a browser would build from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


HOSTILE = (
    '<script>alert("owned")</script> <img src=x onerror=alert(1)> <a hx-get="/chat/start" hx-trigger="load">x</a>'
    ' <div onclick="alert(2)">y</div> [click](javascript:alert(3)) ![pixel](https://example.com/p.png)'
)


def test_a_shared_answer_is_shown_inert(
    logged_in_client: Client, other_client: Client, converse: Any, make_user: Any
) -> None:
    conversation, answer = converse(HOSTILE)
    finish(answer, HOSTILE)
    html = other_client.get(link(share(logged_in_client, conversation))).content.decode()
    markup = Markup()
    markup.feed(html)
    for tag, attributes in markup.tags:
        assert tag not in ("img", "iframe", "object"), tag
        assert not (tag == "script" and "src" not in attributes), "an inline script"
        for name, value in attributes.items():
            assert not name.startswith("on"), (tag, name)
            assert name not in ("hx-get", "hx-post", "hx-trigger"), (tag, name)
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, name)
    # shown as text instead, in both the question and the answer
    bodies = html.split('class="message-body')[1:]
    assert len(bodies) == 2
    for body in bodies:
        assert "&lt;script&gt;alert(" in body


def test_an_unknown_or_guessed_token_gets_the_same_404_as_a_revoked_one(
    logged_in_client: Client, other_client: Client, conversation: Conversation
) -> None:
    revoked = share(logged_in_client, conversation)
    assert services.share_revoke(share=revoked)
    real = share(logged_in_client, conversation)
    guesses = [
        revoked.token,
        "x" * len(real.token),
        real.token[:-1],
        real.token[:-1] + ("A" if real.token[-1] != "A" else "B"),
        real.token.swapcase() if real.token.swapcase() != real.token else "nothing",
        str(real.pk),
    ]
    responses = [other_client.get(reverse("chat:shared", args=[token])) for token in guesses]
    assert {response.status_code for response in responses} == {404}
    assert len({response.content for response in responses}) == 1, "a 404 must not tell a revoked link apart"
    assert other_client.get(link(real)).status_code == 200


def test_the_owner_revokes_a_link_and_it_stops_working(
    logged_in_client: Client, other_client: Client, conversation: Conversation
) -> None:
    shared = share(logged_in_client, conversation)
    assert other_client.get(link(shared)).status_code == 200
    response = logged_in_client.post(reverse("chat:shared_revoke", args=[shared.token]))
    assert response.status_code == 302
    assert response["Location"] == reverse("chat:shared_list")
    shared.refresh_from_db()
    assert shared.revoked_at is not None
    assert other_client.get(link(shared)).status_code == 404
    assert logged_in_client.get(link(shared)).status_code == 404
    assert not services.share_revoke(share=shared)  # a second revocation changes nothing


def test_only_the_owner_can_share_or_revoke(
    logged_in_client: Client, other_client: Client, conversation: Conversation
) -> None:
    assert other_client.post(reverse("chat:share", args=[conversation.pk])).status_code == 404
    assert not SharedConversation.objects.exists()
    shared = share(logged_in_client, conversation)
    assert other_client.post(reverse("chat:shared_revoke", args=[shared.token])).status_code == 404
    shared.refresh_from_db()
    assert shared.revoked_at is None
    assert shared.token not in other_client.get(reverse("chat:shared_list")).content.decode()


def test_the_shared_links_page_lists_the_users_open_links_with_revoke_buttons(
    logged_in_client: Client, conversation: Conversation
) -> None:
    kept = share(logged_in_client, conversation)
    revoked = share(logged_in_client, conversation)
    services.share_revoke(share=revoked)
    html = logged_in_client.get(reverse("chat:shared_list")).content.decode()
    assert f'value="http://testserver{link(kept)}"' in html
    assert f'action="{reverse("chat:shared_revoke", args=[kept.token])}"' in html
    assert revoked.token not in html
    page = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert f'action="{reverse("chat:share", args=[conversation.pk])}"' in page
    assert f'href="{reverse("chat:shared_list")}"' in page
    account_menu = page.split('class="account-menu"', 1)[1].split("</details>", 1)[0]
    assert f'<a href="{reverse("chat:shared_list")}">Shared links</a>' in account_menu


def test_a_signed_out_visitor_is_asked_to_log_in_whatever_the_token(
    logged_in_client: Client, conversation: Conversation
) -> None:
    shared = share(logged_in_client, conversation)
    for url in (link(shared), reverse("chat:shared", args=["no-such-token"])):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('login')}?next={url}"


@override_settings(PARLEY_PUBLIC_SHARE_LINKS=True)
def test_public_links_open_for_anyone_but_revoked_ones_still_do_not(
    logged_in_client: Client, conversation: Conversation
) -> None:
    shared = share(logged_in_client, conversation)
    response = Client().get(link(shared))
    assert response.status_code == 200
    assert "The second version: Paris." in response.content.decode()
    services.share_revoke(share=shared)
    assert Client().get(link(shared)).status_code == 404
    assert Client().get(reverse("chat:shared", args=["no-such-token"])).status_code == 404
    assert Client().get(reverse("chat:shared_list")).status_code == 302  # the list stays private


def test_a_bad_public_share_links_value_stops_with_the_variables_name(tmp_path: Any) -> None:
    env = {**os.environ, "PARLEY_VAR_DIR": str(tmp_path), "PARLEY_PUBLIC_SHARE_LINKS": "maybe"}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "PARLEY_PUBLIC_SHARE_LINKS='maybe' is not a boolean" in result.stdout + result.stderr
