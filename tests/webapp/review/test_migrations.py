"""Upgrading: chat items made before prompts were kept get the prompt the export gave them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps
from django.utils import timezone

from tests.migrations import migrated_back

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("review", "0003_sentiment_item_in_sentiment_app")
AFTER = ("review", "0004_reviewitem_prompt")


@pytest.fixture
def before_prompts() -> Iterator[StateApps]:
    """The models as they were before review items kept prompts (the schema put back after)."""
    with migrated_back(BEFORE) as apps:
        yield apps


def test_the_migration_fills_an_existing_items_prompt(before_prompts: StateApps) -> None:
    apps = before_prompts
    User = apps.get_model("accounts", "User")
    Conversation = apps.get_model("chat", "Conversation")
    Message = apps.get_model("chat", "Message")
    ReviewItem = apps.get_model("review", "ReviewItem")
    owner = User.objects.create(username="old@example.com", email="old@example.com", password="x")
    # the conversation's system prompt changed after; the answer's recorded one is what it was given
    conversation = Conversation.objects.create(owner=owner, title="Bread", system_prompt="Be long.")
    first = Message.objects.create(conversation=conversation, role="user", content="What is bread?")
    answer = Message.objects.create(
        conversation=conversation, parent=first, role="assistant", content="Baked dough.", status="complete"
    )
    again = Message.objects.create(conversation=conversation, parent=answer, role="user", content="And rye?")
    reply = Message.objects.create(
        conversation=conversation, parent=again, role="assistant", content="Bread of rye.", status="complete",
        settings={"system_prompt": "Be brief.", "temperature": 0.7},
    )  # fmt: skip
    # a failed answer above says nothing to the model
    other = Conversation.objects.create(owner=owner, title="Other")
    hello = Message.objects.create(conversation=other, role="user", content="Hi")
    failed = Message.objects.create(conversation=other, parent=hello, role="assistant", content="Half", status="failed")
    retry = Message.objects.create(conversation=other, parent=failed, role="user", content="Hi again")
    lone = Message.objects.create(
        conversation=other, parent=retry, role="assistant", content="Hello.", status="complete"
    )
    now = timezone.now()
    item = ReviewItem.objects.create(kind="chat", message=reply, owner=owner, produced_at=now)
    lone_item = ReviewItem.objects.create(kind="chat", message=lone, owner=owner, produced_at=now)

    MigrationExecutor(connection).migrate([AFTER])

    from webapp.review.models import ReviewItem as CurrentReviewItem

    assert CurrentReviewItem.objects.get(pk=item.pk).prompt == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is bread?"},
        {"role": "assistant", "content": "Baked dough."},
        {"role": "user", "content": "And rye?"},
    ]
    assert CurrentReviewItem.objects.get(pk=lone_item.pk).prompt == [
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "Hi again"},
    ]
