"""Collections: named sets of a user's documents, made and edited on the documents side,
attached to chats (from the composer of a new chat, a conversation's panel, or a project's
defaults), scoped to their owner, and left by a document that is deleted."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from webapp.accounts.models import User
from webapp.chat import services as chat
from webapp.chat.models import Conversation, ConversationCollection, ConversationDocument
from webapp.documents import services
from webapp.documents.models import Collection, Document

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    cache.clear()


@pytest.fixture
def other(make_user: Callable[..., User]) -> User:
    return make_user("mallory@example.com")


def document_of(owner: User, name: str) -> Document:
    return Document.objects.create(
        owner=owner, name=name, kind="text", size=1, sha256=f"{owner.pk}-{name}", original=b"x", status="ready"
    )


def names(collection: Collection) -> list[str]:
    return sorted(collection.documents.values_list("name", flat=True))


def error_on(response: Any) -> str:
    match = re.search(r'<div class="form-errors"[^>]*><p>(.*?)</p>', response.content.decode())
    assert match, "the page shows no error"
    return match.group(1)


def test_a_collection_is_made_listed_and_edited_from_the_documents_side(logged_in_client: Client, user: User) -> None:
    handbook, rota, menu = (
        document_of(user, "handbook.txt"),
        document_of(user, "rota.txt"),
        document_of(user, "menu.txt"),
    )
    assert reverse("documents:collections") in logged_in_client.get(reverse("documents:index")).content.decode()
    response = logged_in_client.post(
        reverse("documents:collections"), {"name": "  Staff   papers ", "documents": [handbook.pk, rota.pk]}
    )
    assert response.status_code == 302
    collection = Collection.objects.get(owner=user)
    assert (collection.name, names(collection)) == ("Staff papers", ["handbook.txt", "rota.txt"])
    listing = logged_in_client.get(reverse("documents:collections")).content.decode()
    assert re.search(r"Staff papers</a></td><td>2</td>", listing)

    page = logged_in_client.get(reverse("documents:collection", args=[collection.pk])).content.decode()
    assert re.search(rf'value="{rota.pk}"[^>]*checked', page)
    logged_in_client.post(
        reverse("documents:collection", args=[collection.pk]), {"name": "Staff", "documents": [rota.pk, menu.pk]}
    )
    collection.refresh_from_db()
    assert (collection.name, names(collection)) == ("Staff", ["menu.txt", "rota.txt"])

    logged_in_client.post(reverse("documents:collection_delete", args=[collection.pk]))
    assert not Collection.objects.exists()
    assert Document.objects.filter(owner=user).count() == 3  # its documents are kept


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "A collection needs a name."),
        ("x" * 101, "A collection&#x27;s name can be at most 100 characters long; that one is 101."),
        (" staff ", "You already have a collection named “staff”."),
    ],
)
def test_a_bad_name_is_refused_and_nothing_changes(logged_in_client: Client, user: User, name: str, error: str) -> None:
    services.collection_create(owner=user, name="Staff")
    response = logged_in_client.post(reverse("documents:collections"), {"name": name})
    assert response.status_code == 422
    assert error_on(response) == error
    assert list(Collection.objects.values_list("name", flat=True)) == ["Staff"]


def test_a_collection_never_crosses_users(logged_in_client: Client, user: User, other: User) -> None:
    mine, theirs = document_of(user, "mine.txt"), document_of(other, "theirs.txt")
    collection = services.collection_create(owner=user, name="Mine", document_ids=[mine.pk])
    response = logged_in_client.post(
        reverse("documents:collection", args=[collection.pk]), {"name": "Mine", "documents": [mine.pk, theirs.pk]}
    )
    assert response.status_code == 422
    assert error_on(response) == "A collection holds only your own documents."
    assert names(collection) == ["mine.txt"]
    with pytest.raises(services.DocumentError, match="only your own documents"):
        services.collection_create(owner=user, name="Sneaky", document_ids=[theirs.pk])

    their_collection = services.collection_create(owner=other, name="Theirs", document_ids=[theirs.pk])
    for url in (
        reverse("documents:collection", args=[their_collection.pk]),
        reverse("documents:collection_delete", args=[their_collection.pk]),
    ):
        assert logged_in_client.post(url, {"name": "Taken"}).status_code == 404
    assert logged_in_client.get(reverse("documents:collection", args=[their_collection.pk])).status_code == 404
    assert "Theirs" not in logged_in_client.get(reverse("documents:collections")).content.decode()
    their_collection.refresh_from_db()
    assert their_collection.name == "Theirs"

    # attaching another's collection to one's conversation takes nothing; starting with it is refused
    conversation = Conversation.objects.create(owner=user)
    logged_in_client.post(reverse("chat:attach", args=[conversation.pk]), {"collections": [their_collection.pk]})
    assert not ConversationCollection.objects.exists()
    response = logged_in_client.post(
        reverse("chat:start"), {"content": "What do they hold?", "collections": [their_collection.pk]}
    )
    assert response.status_code == 302
    assert Conversation.objects.filter(owner=user).count() == 1  # no new conversation
    assert "Choose among your own collections." in logged_in_client.get(response["Location"]).content.decode()


def test_deleting_a_document_takes_it_out_of_its_collections(logged_in_client: Client, user: User) -> None:
    handbook, rota = document_of(user, "handbook.txt"), document_of(user, "rota.txt")
    collection = services.collection_create(owner=user, name="Staff", document_ids=[handbook.pk, rota.pk])
    logged_in_client.post(reverse("documents:delete", args=[handbook.pk]))
    assert names(collection) == ["rota.txt"]


def test_a_collection_is_attached_to_a_conversation_and_detached_from_its_panel(
    logged_in_client: Client, user: User
) -> None:
    rota = document_of(user, "rota.txt")
    collection = services.collection_create(owner=user, name="Staff", document_ids=[rota.pk])
    conversation = Conversation.objects.create(owner=user)
    page = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert f'<option value="{collection.pk}">Collection: Staff</option>' in page
    logged_in_client.post(reverse("chat:attach", args=[conversation.pk]), {"collections": [collection.pk]})
    page = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "Documents · 1 collection" in page
    assert "(1 document)" in page
    logged_in_client.post(reverse("chat:detach_collection", args=[conversation.pk, collection.pk]))
    assert not ConversationCollection.objects.filter(conversation=conversation).exists()
    # deleting the collection ends its attachments, never the conversation
    logged_in_client.post(reverse("chat:attach", args=[conversation.pk]), {"collections": [collection.pk]})
    logged_in_client.post(reverse("documents:collection_delete", args=[collection.pk]))
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    assert not ConversationCollection.objects.exists()


def test_documents_and_collections_are_attached_from_the_composer_before_the_first_message(
    logged_in_client: Client, user: User, other: User
) -> None:
    rota, menu = document_of(user, "rota.txt"), document_of(user, "menu.txt")
    collection = services.collection_create(owner=user, name="Staff", document_ids=[menu.pk])
    document_of(other, "theirs.txt")
    page = logged_in_client.get(reverse("chat:index")).content.decode()
    assert "Attach documents" in page
    assert f'<input type="checkbox" name="documents" value="{rota.pk}"> rota.txt' in page
    assert f'<input type="checkbox" name="collections" value="{collection.pk}"> Staff' in page
    assert "theirs.txt" not in page

    response = logged_in_client.post(
        reverse("chat:start"), {"content": "Who is on call?", "documents": [rota.pk], "collections": [collection.pk]}
    )
    conversation = Conversation.objects.get(owner=user)
    assert response["Location"] == reverse("chat:conversation", args=[conversation.pk])
    assert list(ConversationDocument.objects.filter(conversation=conversation).values_list("document", flat=True)) == [
        rota.pk
    ]
    assert list(
        ConversationCollection.objects.filter(conversation=conversation).values_list("collection", flat=True)
    ) == [collection.pk]


@pytest.mark.parametrize("value", ["theirs", "not-a-number"])
def test_the_composer_refuses_a_document_that_is_not_the_users_and_makes_nothing(
    logged_in_client: Client, user: User, other: User, value: str
) -> None:
    theirs = document_of(other, "theirs.txt")
    chosen = str(theirs.pk) if value == "theirs" else "abc"
    response = logged_in_client.post(
        reverse("chat:start"), {"content": "Peek?", "documents": [chosen]}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert "Choose among your own documents." in response.content.decode()
    assert not Conversation.objects.filter(owner=user).exists()


def test_a_project_hands_down_its_collections(logged_in_client: Client, user: User, other: User) -> None:
    rota = document_of(user, "rota.txt")
    collection = services.collection_create(owner=user, name="Staff", document_ids=[rota.pk])
    their_collection = services.collection_create(owner=other, name="Theirs")
    response = logged_in_client.post(
        reverse("chat:projects"), {"name": "Work", "system_prompt": "", "model": "", "collections": [collection.pk]}
    )
    assert response.status_code == 302
    project = chat.selectors.projects_for(user=user).get()
    assert list(project.collections.all()) == [collection]
    refused = logged_in_client.post(
        reverse("chat:project", args=[project.pk]),
        {"name": "Work", "system_prompt": "", "model": "", "collections": [their_collection.pk]},
    )
    assert refused.status_code == 422
    assert error_on(refused) == "Choose among your own collections."
    new_chat = logged_in_client.get(reverse("chat:index"), {"project": project.pk}).content.decode()
    assert "And the collections: <a" in new_chat
    logged_in_client.post(reverse("chat:start"), {"content": "Who is on call?", "project": project.pk})
    conversation = Conversation.objects.get(owner=user)
    assert list(conversation.collection_attachments.values_list("collection", flat=True)) == [collection.pk]
