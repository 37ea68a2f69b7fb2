"""Importing conversations: Parley's own JSON and ChatGPT's export, and every file refused."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.defaultfilters import filesizeformat
from django.test import Client
from django.urls import reverse

from tests.webapp.chat.conftest import finish
from webapp.chat import imports, selectors, services
from webapp.chat.models import Conversation, Message
from webapp.documents.models import Document

pytestmark = pytest.mark.django_db


def send_file(client: Client, data: bytes, name: str = "conversations.json") -> Any:
    return client.post(reverse("chat:import"), {"file": SimpleUploadedFile(name, data, "application/json")})


def as_bytes(document: Any) -> bytes:
    return json.dumps(document).encode()


def node(
    key: str,
    parent: str | None,
    role: str | None,
    parts: list[Any] | None = None,
    time: float | None = None,
    content_type: str = "text",
    model: str | None = None,
) -> tuple[str, dict[str, Any]]:
    message: dict[str, Any] | None = None
    if role is not None:
        message = {
            "id": key,
            "author": {"role": role, "name": None, "metadata": {}},
            "create_time": time,
            "content": {"content_type": content_type, "parts": parts or []},
            "status": "finished_successfully",
            "metadata": {"model_slug": model} if model else {},
        }
    return key, {"id": key, "message": message, "parent": parent, "children": []}


def hidden(*args: Any, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """A node ChatGPT keeps but does not show."""
    key, entry = node(*args, **kwargs)
    entry["message"]["metadata"]["is_visually_hidden_from_conversation"] = True
    return key, entry


def chatgpt_conversation(*nodes: tuple[str, dict[str, Any]], current: str, title: str = "From ChatGPT") -> dict:
    mapping = dict(nodes)
    for key, entry in mapping.items():
        if entry["parent"] in mapping:
            mapping[entry["parent"]]["children"].append(key)
    return {"title": title, "create_time": 1_700_000_000.5, "update_time": 1_700_000_900.0, "mapping": mapping,
            "current_node": current, "conversation_id": "abc"}  # fmt: skip


def branched_chatgpt() -> dict[str, Any]:
    """A system message, a question answered twice (regenerated), a tool call between the
    second answer and its follow-up, and a picture sent as the last question."""
    return chatgpt_conversation(
        node("root", None, None),
        hidden("system", "root", "system", ["You are terse."]),
        node("q1", "system", "user", ["What is 2 + 2?"], time=1_700_000_001),
        node("a1", "q1", "assistant", ["Five."], time=1_700_000_002, model="gpt-4"),
        node("a2", "q1", "assistant", ["Four."], time=1_700_000_003, model="gpt-4o"),
        node("tool", "a2", "tool", ["calculator: 4"], time=1_700_000_004),
        node("a3", "tool", "assistant", ["Checked: four."], time=1_700_000_005),
        node("picture", "a3", "user", [{"asset_pointer": "file-service://x"}], 1_700_000_006, "multimodal_text"),
        current="a3",
    )


class Elements(HTMLParser):
    """Every element of a piece of HTML, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def shown(conversation: Conversation) -> list[tuple[str, str, str]]:
    return [
        (e.message.role, e.message.content, e.message.model_name) for e in selectors.thread(conversation=conversation)
    ]


# ---- ChatGPT -------------------------------------------------------------------------------


def test_a_chatgpt_export_keeps_branches_the_system_prompt_and_the_branch_shown(
    logged_in_client: Client, user: Any
) -> None:
    response = send_file(logged_in_client, as_bytes([branched_chatgpt()]))
    assert response.status_code == 200
    conversation = Conversation.objects.get(owner=user)
    assert conversation.title == "From ChatGPT"
    assert conversation.system_prompt == "You are terse."
    assert shown(conversation) == [
        ("user", "What is 2 + 2?", ""),
        ("assistant", "Four.", "gpt-4o"),
        ("assistant", "Checked: four.", "imported"),
    ]
    question = Message.objects.get(conversation=conversation, content="What is 2 + 2?")
    assert [(m.content, m.model_name) for m in question.children.order_by("created_at", "pk")] == [
        ("Five.", "gpt-4"),
        ("Four.", "gpt-4o"),
    ]
    assert set(Message.objects.filter(conversation=conversation).values_list("status", flat=True)) == {"complete"}
    assert conversation.created_at.timestamp() == pytest.approx(1_700_000_000.5)
    page = response.content.decode()
    assert "Imported from ChatGPT" in page
    assert "1 conversation and 4 messages." in page
    assert f"1 {imports.SKIPPED_ROLE}" in page
    assert f"1 {imports.SKIPPED_NOT_TEXT}" in page
    assert f"1 {imports.SKIPPED_PARTS}" in page
    assert f'href="{reverse("chat:conversation", args=[conversation.pk])}"' in page


def test_chatgpt_roles_other_than_user_and_assistant_are_left_out_and_counted(user: Any) -> None:
    plan = imports.plan_from(
        [
            chatgpt_conversation(
                node("q", None, "user", ["Hi"], time=1),
                node("critic", "q", "critic", ["Rude."], time=2),
                node("a", "critic", "assistant", ["Hello."], time=3),
                node("empty", "a", "assistant", [""], time=4),
                hidden("context", "a", "user", ["Memory: likes tea"], time=5),
                current="a",
            )
        ]
    )
    result = services.conversations_import(owner=user, plan=plan)
    assert result.skipped == {imports.SKIPPED_ROLE: 1, imports.SKIPPED_EMPTY: 1, imports.SKIPPED_HIDDEN: 1}
    assert shown(result.conversations[0]) == [("user", "Hi", ""), ("assistant", "Hello.", "imported")]


def test_a_loop_or_a_missing_parent_in_the_mapping_leaves_that_branch_out_and_says_so(
    logged_in_client: Client, user: Any
) -> None:
    conversation = chatgpt_conversation(
        node("q", None, "user", ["Kept question"], time=1),
        node("a", "q", "assistant", ["Kept answer"], time=2),
        node("loop-1", "loop-2", "user", ["In a loop"], time=3),
        node("loop-2", "loop-1", "assistant", ["Also in a loop"], time=4),
        node("self", "self", "user", ["My own parent"], time=5),
        node("orphan", "not-in-the-file", "user", ["Orphan"], time=6),
        node("orphan-answer", "orphan", "assistant", ["Orphan's answer"], time=7),
        current="loop-2",
    )
    response = send_file(logged_in_client, as_bytes([conversation]))
    assert response.status_code == 200
    imported = Conversation.objects.get(owner=user)
    assert sorted(Message.objects.filter(conversation=imported).values_list("content", flat=True)) == [
        "Kept answer",
        "Kept question",
    ]
    assert imported.current_leaf is None  # the branch it showed is gone: the latest is shown
    assert shown(imported) == [("user", "Kept question", ""), ("assistant", "Kept answer", "imported")]
    assert f"5 {imports.SKIPPED_CUT_OFF}" in response.content.decode()


# ---- Parley's own format -------------------------------------------------------------------


@pytest.fixture
def branched(converse: Any) -> Conversation:
    """Two questions; the first answer regenerated, the first version shown; a system prompt."""
    conversation, first = converse("What is the capital of France?")
    finish(first, "The first version: Lyon.")
    second = finish(services.message_regenerate(answer=first), "The second version: **Paris**.", "other-model")
    conversation.refresh_from_db()
    follow_up = services.message_send(conversation=conversation, content="And of Italy?")
    Message.objects.filter(pk=follow_up.pk).update(status="interrupted", content="Ro", model_name="tiny-model")
    services.branch_switch(message=first)
    Conversation.objects.filter(pk=conversation.pk).update(system_prompt="Be brief.", temperature=0.2, max_tokens=100)
    conversation.refresh_from_db()
    assert second.pk
    return conversation


def tree(document: dict[str, Any]) -> list[Any]:
    """The messages as nested (role, content, status, model, [children]), ids left out."""
    children: dict[Any, list[dict[str, Any]]] = {}
    for message in document["messages"]:
        children.setdefault(message["parent_id"], []).append(message)

    def build(parent: Any) -> list[Any]:
        return [
            (m["role"], m["content"], m["status"], m["model_name"], build(m["id"])) for m in children.get(parent, [])
        ]

    return build(None)


def shown_branch(document: dict[str, Any]) -> list[str]:
    by_id = {m["id"]: m for m in document["messages"]}
    path, key = [], document["current_leaf_id"]
    while key is not None:
        path.append(by_id[key]["content"])
        key = by_id[key]["parent_id"]
    return path[::-1]


def export_json(client: Client, conversation: Conversation) -> dict[str, Any]:
    response = client.get(reverse("chat:export", args=[conversation.pk, "json"]))
    assert response.status_code == 200
    return dict(json.loads(response.content))


def test_an_exported_conversation_imported_exports_the_same(
    logged_in_client: Client, branched: Conversation, user: Any
) -> None:
    exported = export_json(logged_in_client, branched)
    response = send_file(logged_in_client, json.dumps(exported).encode(), "chat.json")
    assert response.status_code == 200
    assert "Imported from Parley" in response.content.decode()
    imported = Conversation.objects.filter(owner=user).exclude(pk=branched.pk).get()
    again = export_json(logged_in_client, imported)

    for key in ("format", "version", "title", "system_prompt", "settings", "created"):
        assert again[key] == exported[key]
    assert tree(again) == tree(exported)
    assert (
        shown_branch(again) == shown_branch(exported) == ["What is the capital of France?", "The first version: Lyon."]
    )
    assert {m["id"] for m in again["messages"]}.isdisjoint({m["id"] for m in exported["messages"]})
    assert shown(imported) == shown(branched)


def test_a_list_of_parley_conversations_is_imported_in_one_go(
    logged_in_client: Client, branched: Conversation, user: Any
) -> None:
    exported = export_json(logged_in_client, branched)
    response = send_file(logged_in_client, as_bytes([exported, {**exported, "title": "The copy"}]))
    assert response.status_code == 200
    assert "2 conversations and 10 messages." in response.content.decode()
    titles = Conversation.objects.filter(owner=user).exclude(pk=branched.pk).values_list("title", flat=True)
    assert sorted(titles) == sorted([branched.title, "The copy"])


def test_an_answer_still_being_written_when_exported_is_imported_ended_and_never_queued(user: Any) -> None:
    document = {
        "format": "parley.conversation",
        "version": 1,
        "title": "Half",
        "messages": [
            {"id": 1, "parent_id": None, "role": "user", "content": "Hi", "status": "complete"},
            {"id": 2, "parent_id": 1, "role": "assistant", "content": "He", "status": "generating", "model_name": ""},
            {"id": 3, "parent_id": 1, "role": "system", "content": "Odd", "status": "complete"},
        ],
        "current_leaf_id": 2,
    }
    result = services.conversations_import(owner=user, plan=imports.plan_from(document))
    answer = Message.objects.get(conversation=result.conversations[0], role="assistant")
    assert (answer.status, answer.model_name) == ("interrupted", "imported")
    assert not Message.objects.filter(status__in=Message.IN_FLIGHT).exists()
    assert result.skipped == {imports.SKIPPED_ROLE: 1}


def test_html_and_scripts_in_messages_are_kept_as_text_and_shown_inert(logged_in_client: Client, user: Any) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror="alert(1)"><a href="javascript:alert(2)">go</a>'
    conversation = chatgpt_conversation(
        node("q", None, "user", [hostile], time=1), node("a", "q", "assistant", [hostile], time=2), current="a"
    )
    assert send_file(logged_in_client, as_bytes([conversation])).status_code == 200
    imported = Conversation.objects.get(owner=user)
    assert set(Message.objects.filter(conversation=imported).values_list("content", flat=True)) == {hostile}
    page = logged_in_client.get(reverse("chat:conversation", args=[imported.pk])).content.decode()
    thread = page[page.index('id="thread"') : page.index('id="composer"')]
    elements = Elements()
    elements.feed(thread)
    assert "script" not in {tag for tag, _ in elements.found}
    assert "img" not in {tag for tag, _ in elements.found}
    attributes = [(name, value or "") for _, attrs in elements.found for name, value in attrs]
    assert not [name for name, _ in attributes if name.startswith("on")]
    assert not [value for _, value in attributes if value.strip().lower().startswith("javascript:")]
    assert "&lt;script&gt;alert" in thread  # shown as the text it is


def test_characters_postgres_cannot_store_are_removed(user: Any) -> None:
    message = '{"author": {"role": "user"}, "content": {"content_type": "text", "parts": ["x\\u0000y \\ud800z"]}}'
    text = (
        f'{{"title": "a\\u0000b", "mapping": {{"q": {{"message": {message}, "parent": null}}}}, "current_node": "q"}}'
    )
    result = services.conversations_import(owner=user, plan=imports.read_import(text.encode()))
    assert result.conversations[0].title == "ab"
    assert Message.objects.get(conversation=result.conversations[0]).content == "xy ?z"
    assert result.skipped[imports.CLEANED_TEXT] == 3


# ---- files refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"", "Choose a file to import."),
        (b"   \n", "That file is empty."),
        (b"{not json", "not valid JSON (line 1, column 2)"),
        ('[{"title": "caf\u00e9"}]'.encode("latin-1"), "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"mapping": ' * 5_000 + b"{}" + b"}" * 5_000, "nested too deeply"),
        (b'{"hello": "world"}', "neither a Parley export"),
        (b"[]", "holds no conversations"),
        (b'"just a string"', "neither a Parley export"),
        (b'{"format": "parley.conversation", "version": 2, "messages": []}', "version 2 of Parley's format"),
        (b'[{"mapping": {}}, 3]', "Item 2 of that file is not a conversation"),
        (b'[{"mapping": {}}, {"format": "parley.conversation", "version": 1, "messages": []}]', "mixes"),
        (b'{"x": 1' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
    ids=[
        "no-file",
        "blank",
        "not-json",
        "latin-1",
        "deep-lists",
        "deep-objects",
        "other-json",
        "empty-list",
        "string",
        "newer-version",
        "not-a-conversation",
        "mixed",
        "huge-number",
    ],
)
def test_a_file_that_cannot_be_imported_is_refused_with_the_reason_and_changes_nothing(
    logged_in_client: Client, user: Any, data: bytes, said: str
) -> None:
    response = send_file(logged_in_client, data) if data else logged_in_client.post(reverse("chat:import"), {})
    assert response.status_code == 422
    page = response.content.decode()
    assert said in page.replace("&#x27;", "'")
    assert "Nothing was imported." in page
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()


def test_a_file_over_the_size_limit_is_refused_before_it_is_read_whole(logged_in_client: Client, settings: Any) -> None:
    settings.PARLEY_IMPORT_MAX_BYTES = 1024 * 1024
    data = as_bytes([branched_chatgpt()] * 2000)
    assert len(data) > settings.PARLEY_IMPORT_MAX_BYTES
    response = send_file(logged_in_client, data)
    assert response.status_code == 422
    assert "larger than 1 MB" in response.content.decode()
    assert not Conversation.objects.exists()


def test_more_conversations_than_the_limit_are_refused(
    logged_in_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "MAX_CONVERSATIONS", 2)
    response = send_file(logged_in_client, as_bytes([branched_chatgpt()] * 3))
    assert response.status_code == 422
    assert "holds 3 conversations; at most 2" in response.content.decode()
    assert not Conversation.objects.exists()


def test_more_messages_than_the_limit_are_refused(logged_in_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "MAX_MESSAGES", 10)
    response = send_file(logged_in_client, as_bytes([branched_chatgpt()] * 2))  # 8 entries each
    assert response.status_code == 422
    assert "holds 16 messages; at most 10" in response.content.decode()
    assert not Conversation.objects.exists()


def test_an_import_that_fails_midway_leaves_nothing_behind(user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = imports.plan_from([branched_chatgpt(), branched_chatgpt()])

    def broken(**kwargs: Any) -> list[int]:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "answers_import", broken)
    with pytest.raises(RuntimeError):
        services.conversations_import(owner=user, plan=plan)
    assert not Conversation.objects.exists()


def test_imported_conversations_are_their_importers_alone(logged_in_client: Client, user: Any, make_user: Any) -> None:
    other = make_user()
    send_file(logged_in_client, as_bytes([branched_chatgpt()]))
    imported = Conversation.objects.get()
    assert imported.owner == user
    client = Client()
    client.force_login(other)
    assert client.get(reverse("chat:conversation", args=[imported.pk])).status_code == 404


def test_the_import_page_needs_a_login_and_the_sidebar_links_to_it(logged_in_client: Client) -> None:
    response = Client().get(reverse("chat:import"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert f'href="{reverse("chat:import")}"' in logged_in_client.get(reverse("chat:index")).content.decode()
    page = logged_in_client.get(reverse("chat:import")).content.decode()
    assert 'enctype="multipart/form-data"' in page


def test_the_import_refuses_a_post_without_its_csrf_token(user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert send_file(client, as_bytes([branched_chatgpt()])).status_code == 403
    assert not Conversation.objects.exists()


def parley_file(*contents: str, system_prompt: str = "") -> bytes:
    """A Parley export of one conversation: a question and answers, one after the other."""
    messages = [
        {"id": n, "parent_id": n - 1 if n else None, "role": ("user", "assistant")[n % 2], "content": content}
        for n, content in enumerate(contents)
    ]
    document = {"format": "parley.conversation", "version": 1, "title": "Kept", "messages": messages}
    return as_bytes({**document, "system_prompt": system_prompt, "current_leaf_id": len(contents) - 1})


def test_imported_conversations_text_counts_toward_storage_on_the_usage_display(
    logged_in_client: Client, user: Any
) -> None:
    from tests.webapp.documents.test_quotas import stored

    stored(user, "a.txt", 1000)
    # 2 bytes a "é": 600 + 400 + 100 bytes of text, the system prompt's included
    assert send_file(logged_in_client, parley_file("é" * 300, "b" * 400, system_prompt="s" * 100)).status_code == 200
    usage = (
        f"Your storage: {filesizeformat(2100)} of {filesizeformat(500 * 1024 * 1024)} "
        f"(documents {filesizeformat(1000)}, conversations {filesizeformat(1100)})"
    )
    assert usage in logged_in_client.get(reverse("documents:index")).content.decode()
    assert usage in logged_in_client.get(reverse("chat:import")).content.decode()


def test_an_import_over_the_storage_quota_is_refused_with_the_usage_and_nothing_is_imported(
    logged_in_client: Client, user: Any, settings: Any
) -> None:
    from tests.webapp.documents.test_quotas import stored

    settings.PARLEY_QUOTA_STORAGE_BYTES = 3000
    stored(user, "old.txt", 1500)
    response = send_file(logged_in_client, parley_file("q" * 1000, "a" * 501))
    assert response.status_code == 422
    page = response.content.decode()
    assert "This import would pass your storage quota of 2.9\xa0KB" in page
    assert "your documents and conversations take 1.5\xa0KB and it adds 1.5\xa0KB" in page
    assert "Nothing was imported." in page
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()
    # what fits, to the byte, is taken, and then nothing more
    response = send_file(logged_in_client, parley_file("q" * 1000, "a" * 500))
    assert response.status_code == 200
    assert "1 conversation and 2 messages." in response.content.decode()
    assert Message.objects.count() == 2
    refused = send_file(logged_in_client, parley_file("x"))
    assert refused.status_code == 422
    assert "it adds 1\xa0byte" in refused.content.decode()
    assert Conversation.objects.count() == 1


def test_conversations_count_toward_the_storage_an_upload_is_refused_over(
    logged_in_client: Client, user: Any, settings: Any
) -> None:
    settings.PARLEY_QUOTA_STORAGE_BYTES = 2000
    assert send_file(logged_in_client, parley_file("q" * 900, "a" * 900)).status_code == 200
    response = logged_in_client.post(
        reverse("documents:upload"), {"files": [SimpleUploadedFile("one.txt", b"1" * 300)]}, follow=True
    )
    page = response.content.decode()
    assert "This upload would pass your storage quota" in page
    assert "your documents and conversations take 1.8\xa0KB and it adds 300\xa0bytes" in page
    assert not Document.objects.exists()
