"""Exporting a conversation: Markdown of the branch shown, JSON of the whole tree."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.webapp.chat.conftest import finish
from webapp.chat import services
from webapp.chat.models import Conversation, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_versions(converse: Any) -> tuple[Conversation, Message, Message]:
    """A conversation whose answer was regenerated: the second version is shown."""
    conversation, first = converse("What is the capital of France?")
    finish(first, "The first version: Lyon.")
    second = finish(services.message_regenerate(answer=first), "The second version: Paris.", "other-model")
    conversation.refresh_from_db()
    return conversation, first, second


def export(client: Client, conversation: Conversation, extension: str) -> Any:
    return client.get(reverse("chat:export", args=[conversation.pk, extension]))


def test_the_markdown_holds_only_the_branch_shown(logged_in_client: Client, two_versions: Any) -> None:
    conversation, _first, _second = two_versions
    response = export(logged_in_client, conversation, "md")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    assert response["Content-Disposition"].startswith("attachment;")
    text = response.content.decode()
    assert text.startswith(f"# {conversation.title}\n")
    assert "## User\n\nWhat is the capital of France?" in text
    assert "## Assistant (other-model)\n\nThe second version: Paris." in text
    assert "Lyon" not in text


def test_the_markdown_follows_the_version_the_owner_switched_to(logged_in_client: Client, two_versions: Any) -> None:
    conversation, first, _second = two_versions
    services.branch_switch(message=first)
    text = export(logged_in_client, conversation, "md").content.decode()
    assert "## Assistant (tiny-model)\n\nThe first version: Lyon." in text
    assert "Paris" not in text


def test_the_markdown_says_when_an_answer_was_stopped(logged_in_client: Client, converse: Any) -> None:
    conversation, answer = converse()
    Message.objects.filter(pk=answer.pk).update(status="interrupted", content="Half an")
    text = export(logged_in_client, conversation, "md").content.decode()
    assert "Half an\n\n_(stopped)_" in text


def test_the_json_holds_every_version_and_its_parent_links_rebuild_the_tree(
    logged_in_client: Client, two_versions: Any
) -> None:
    conversation, first, second = two_versions
    Conversation.objects.filter(pk=conversation.pk).update(system_prompt="Be brief.", temperature=0.2)
    response = export(logged_in_client, conversation, "json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = json.loads(response.content)
    assert (document["format"], document["version"]) == ("parley.conversation", 1)
    assert document["title"] == conversation.title
    assert document["system_prompt"] == "Be brief."
    assert document["settings"] == {"temperature": 0.2, "top_p": 0.95, "max_tokens": conversation.max_tokens}
    assert document["created"]
    assert document["current_leaf_id"] == second.pk

    messages = {m["id"]: m for m in document["messages"]}
    assert set(messages) == {first.parent_id, first.pk, second.pk}
    children: dict[int | None, list[int]] = {}
    for message in document["messages"]:
        assert set(message) == {"id", "parent_id", "role", "content", "status", "model_name", "created"}
        children.setdefault(message["parent_id"], []).append(message["id"])
    (root,) = children[None]
    assert messages[root]["content"] == "What is the capital of France?"
    versions = [messages[child] for child in children[root]]
    assert [(v["role"], v["content"], v["model_name"], v["status"]) for v in versions] == [
        ("assistant", "The first version: Lyon.", "tiny-model", "complete"),
        ("assistant", "The second version: Paris.", "other-model", "complete"),
    ]


def test_another_users_conversation_cannot_be_exported(client: Client, two_versions: Any, make_user: Any) -> None:
    conversation, _first, _second = two_versions
    client.force_login(make_user())
    for extension in ("md", "json"):
        assert export(client, conversation, extension).status_code == 404


def test_an_unknown_format_is_not_found(logged_in_client: Client, two_versions: Any) -> None:
    conversation, _first, _second = two_versions
    assert export(logged_in_client, conversation, "html").status_code == 404


def test_exports_need_a_login(two_versions: Any) -> None:
    conversation, _first, _second = two_versions
    response = export(Client(), conversation, "json")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("title", "disposition"),
    [
        ('He said "hi" / ../../etc\\passwd; rm', 'attachment; filename="he-said-hi-etcpasswd-rm-{pk}.md"'),
        ('"/\\..', 'attachment; filename="conversation-{pk}.md"'),
        ("Notes: café & crème", "attachment; filename*=utf-8''notes-caf%C3%A9-cr%C3%A8me-{pk}.md"),
    ],
)
def test_a_title_with_quotes_or_slashes_gets_a_safe_file_name(
    logged_in_client: Client, two_versions: Any, title: str, disposition: str
) -> None:
    conversation, _first, _second = two_versions
    Conversation.objects.filter(pk=conversation.pk).update(title=title)
    response = export(logged_in_client, conversation, "md")
    assert response["Content-Disposition"] == disposition.format(pk=conversation.pk)


def test_the_conversation_page_links_to_both_exports(logged_in_client: Client, two_versions: Any) -> None:
    conversation, _first, _second = two_versions
    page = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    for extension in ("md", "json"):
        assert f'href="{reverse("chat:export", args=[conversation.pk, extension])}"' in page
