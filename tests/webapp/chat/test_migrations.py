"""The migration that adds the messages' search document and who wrote each title keeps
every row: the database is taken back to before it, filled through the models of then, and
migrated forward; the rows are read through today's models. It leaves the database migrated
forward."""

from __future__ import annotations

import pytest

from tests.migrations import migrated_back
from webapp.accounts.models import User
from webapp.chat.models import Conversation, Message, Project
from webapp.chat.search import parse_query, search_messages
from webapp.chat.services import conversation_inheritance

BEFORE = ("chat", "0002_sharedconversation")


@pytest.mark.django_db(transaction=True)
def test_titled_conversations_count_as_the_users_and_their_messages_are_searchable() -> None:
    with migrated_back(BEFORE) as old:
        owner = old.get_model("accounts", "User").objects.create(email="old@example.com", username="old@example.com")
        conversations = old.get_model("chat", "Conversation").objects
        messages = old.get_model("chat", "Message").objects
        titled = conversations.create(owner=owner, title="Sourdough")
        question = messages.create(conversation=titled, role="user", content="How long does sourdough rise?")
        answer = messages.create(
            conversation=titled, parent=question, role="assistant", content="Overnight, in the fridge.",
            status="complete",
        )  # fmt: skip
        untitled = conversations.create(owner=owner, title="")

    assert Conversation.objects.get(pk=titled.pk).title == "Sourdough"
    assert Conversation.objects.get(pk=titled.pk).title_source == Conversation.TitleSource.USER
    assert Conversation.objects.get(pk=untitled.pk).title_source == Conversation.TitleSource.FALLBACK
    assert list(Message.objects.filter(conversation_id=titled.pk).values_list("pk", "content")) == [
        (question.pk, "How long does sourdough rise?"),
        (answer.pk, "Overnight, in the fridge."),
    ]
    user = User.objects.get(pk=owner.pk)
    hits = search_messages(user=user, query=parse_query("fridge")).hits
    assert [hit.message_id for hit in hits] == [answer.pk]
    # a new conversation starts with the fallback title
    assert Conversation.objects.create(owner=user).title_source == Conversation.TitleSource.FALLBACK


BEFORE_PROJECT_DEFAULTS = ("chat", "0007_conversation_documents")


@pytest.mark.django_db(transaction=True)
def test_projects_made_before_they_held_a_model_documents_and_collections_keep_their_rows_and_hold_none() -> None:
    with migrated_back(BEFORE_PROJECT_DEFAULTS) as old:
        owner = old.get_model("accounts", "User").objects.create(email="old@example.com", username="old@example.com")
        project = old.get_model("chat", "Project").objects.create(owner=owner, name="Work", system_prompt="Be brief.")
        inside = old.get_model("chat", "Conversation").objects.create(owner=owner, title="Rota", project=project)

    kept = Project.objects.get(pk=project.pk)
    assert (kept.name, kept.system_prompt, kept.model) == ("Work", "Be brief.", "")
    assert not kept.documents.exists()
    assert not kept.collections.exists()
    assert Conversation.objects.get(pk=inside.pk).project_id == kept.pk
    inheritance = conversation_inheritance(project=kept)
    assert inheritance.fields == {"project": kept, "system_prompt": "Be brief.", "model": ""}
    assert (inheritance.document_ids, inheritance.collection_ids) == ((), ())
