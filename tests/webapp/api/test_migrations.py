"""Upgrading to API traffic: existing conversations are the chat page's and stay in the
sidebar, existing review items keep their kind, and the schema matches the models."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps
from django.utils import timezone

from tests.migrations import migrated_back

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("chat", "0002_sharedconversation"), ("review", "0004_reviewitem_prompt")]
AFTER = [("chat", "0004_conversation_origin"), ("review", "0005_api_answers"), ("api", "0001_initial")]


@pytest.fixture
def before_api() -> Iterator[StateApps]:
    with migrated_back(*BEFORE) as apps:
        yield apps


def test_existing_conversations_and_review_items_are_kept_as_the_chat_pages(before_api: StateApps) -> None:
    apps = before_api
    User = apps.get_model("accounts", "User")
    Conversation = apps.get_model("chat", "Conversation")
    Message = apps.get_model("chat", "Message")
    ReviewItem = apps.get_model("review", "ReviewItem")
    owner = User.objects.create(username="old@example.com", email="old@example.com", password="x")
    conversation = Conversation.objects.create(owner=owner, title="Bread")
    question = Message.objects.create(conversation=conversation, role="user", content="What is bread?")
    answer = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content="Baked dough.", status="complete"
    )
    item = ReviewItem.objects.create(kind="chat", message=answer, owner=owner, produced_at=timezone.now())

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    apps = executor.loader.project_state(AFTER).apps
    Conversation = apps.get_model("chat", "Conversation")
    ReviewItem = apps.get_model("review", "ReviewItem")
    Message = apps.get_model("chat", "Message")
    assert Conversation.objects.get(pk=conversation.pk).origin == "chat"
    assert ReviewItem.objects.get(pk=item.pk).kind == "chat"
    assert Message.objects.get(pk=answer.pk).content == "Baked dough."
    # an API answer is an item pointing at its message, like a chat answer; a summary's kind cannot
    other = Message.objects.create(conversation_id=conversation.pk, role="assistant", content="Rye.", status="complete")
    ReviewItem.objects.create(kind="api", message=other, owner_id=owner.pk, produced_at=timezone.now())
    third = Message.objects.create(conversation_id=conversation.pk, role="assistant", content="Spelt.")
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewItem.objects.create(kind="summary", message=third, owner_id=owner.pk, produced_at=timezone.now())


def test_the_models_need_no_migration_that_is_not_written() -> None:
    output = StringIO()
    call_command("makemigrations", "chat", "review", "api", "--check", "--dry-run", stdout=output)
    assert "No changes detected" in output.getvalue()
