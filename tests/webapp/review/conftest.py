"""Outputs of every kind, made the way the product makes them, and reviewers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from webapp.accounts.models import User
from webapp.chat import services as chat
from webapp.chat.answers import generation_settings
from webapp.chat.models import Conversation, Message
from webapp.documents.models import Document, Summary
from webapp.jobs.models import Job
from webapp.review import services
from webapp.review.models import Kind, ReviewItem
from webapp.sentiment.models import SentimentBatch, SentimentItem


@pytest.fixture
def reviewer(make_user: Callable[..., User]) -> User:
    """A reviewer who is not staff: a member of the "reviewer" group."""
    user = make_user("reviewer@example.com")
    # get_or_create: the migration made it, but a transactional test before this one flushed it
    user.groups.add(Group.objects.get_or_create(name=services.REVIEWER_GROUP)[0])
    return user


@pytest.fixture
def reviewer_client(reviewer: User) -> Client:
    client = Client()
    client.force_login(reviewer)
    return client


def make_chat_answer(
    owner: User,
    answer: str,
    *,
    question: str = "What is Parley?",
    system_prompt: str = "",
    model_name: str = "smollm2-135m",
    rating: int | None = None,
    comment: str = "",
    origin: str = Conversation.Origin.CHAT,
) -> ReviewItem:
    """A conversation with one question and its finished answer, queued for review."""
    conversation = Conversation.objects.create(
        owner=owner, title=question[:40], system_prompt=system_prompt, origin=origin
    )
    asked = Message.objects.create(conversation=conversation, role=Message.Role.USER, content=question)
    settings = {**generation_settings(conversation=conversation)}
    reply = Message.objects.create(
        conversation=conversation, parent=asked, role=Message.Role.ASSISTANT, content=answer,
        status=Message.Status.COMPLETE, model_name=model_name, settings=settings, prompt_tokens=12,
        completion_tokens=30,
    )  # fmt: skip
    services.chat_answer_track(message_id=reply.pk)
    if rating is not None:
        chat.feedback_set(answer=reply, user=owner, rating=rating, comment=comment)
    return ReviewItem.objects.get(message=reply)


def make_summary(owner: User, text: str, *, document_text: str = "A long report about rivers. " * 40) -> ReviewItem:
    document = Document.objects.create(
        owner=owner, name="report.txt", kind=Document.Kind.TEXT, size=len(document_text), sha256=str(hash(text)),
        original=document_text.encode(), text=document_text, status=Document.Status.READY, words=200, pages=1,
    )  # fmt: skip
    job = Job.objects.create(owner=owner, kind=Job.Kind.SUMMARY, document=document, state=Job.State.DONE)
    summary = Summary.objects.create(document=document, job=job, text=text, model_name="smollm2-135m")
    services.summary_track(summary_id=summary.pk)
    return ReviewItem.objects.get(summary=summary)


def make_sentiment(
    owner: User, rows: list[tuple[str, str, float]], *, model_name: str = "minilm-sentiment"
) -> list[ReviewItem]:
    batch = SentimentBatch.objects.create(
        owner=owner,
        name="survey.csv",
        source="paste",
        raw=b"",
        model_name=model_name,
        labels=["negative", "neutral", "positive"],  # stored as classifying does
    )
    for number, (text, label, score) in enumerate(rows, start=1):
        SentimentItem.objects.create(batch=batch, row=number, text=text, label=label, score=score)
    services.sentiment_batch_track(batch_id=batch.pk)
    return list(ReviewItem.objects.filter(sentiment_item__batch=batch).order_by("sentiment_item__row"))


@pytest.fixture
def outputs(user: User) -> dict[str, ReviewItem]:
    """One of each kind, plus a disliked answer and an unsure label."""
    chat_item = make_chat_answer(user, "Parley is a self-hosted workspace.")
    api_item = make_chat_answer(user, "Parley answers tools too.", origin=Conversation.Origin.API)
    disliked = make_chat_answer(user, "Parley is a kind of cheese.", rating=-1, comment="Wrong!")
    summary = make_summary(user, "The report is about rivers.")
    sure, unsure = make_sentiment(user, [("I love it", "positive", 0.97), ("It is fine I guess", "neutral", 0.41)])
    assert {item.kind for item in (chat_item, api_item, summary, sure)} == set(Kind.values)
    return {
        "chat": chat_item,
        "api": api_item,
        "disliked": disliked,
        "summary": summary,
        "sure": sure,
        "unsure": unsure,
    }
