"""The queue: every kind of output arrives in it, sorted by need, filtered, and claimed."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import Settings

from tests.waiting import wait_for
from tests.webapp.chat.conftest import Converse, converse, settled, start_worker  # noqa: F401 (fixtures)
from tests.webapp.review.conftest import make_chat_answer, make_sentiment
from webapp.accounts.models import User
from webapp.chat import services as chat
from webapp.chat.models import Message
from webapp.chat.worker import GenerationWorker
from webapp.review import services as review_services
from webapp.review.models import Kind, ReviewItem, Tier
from webapp.sentiment import services as sentiment
from webapp.sentiment.tasks import classify_batch

pytestmark = pytest.mark.django_db


def listed_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-item="(\d+)"', html)]


def test_the_queue_lists_every_kind_most_needed_first(reviewer_client: Client, outputs: dict[str, ReviewItem]) -> None:
    response = reviewer_client.get(reverse("review:queue"))
    assert response.status_code == 200
    ids = listed_ids(response.content.decode())
    assert set(ids) == {item.pk for item in outputs.values()}
    # the thumbs-down first, then the unsure label, then the rest oldest first
    assert ids[:2] == [outputs["disliked"].pk, outputs["unsure"].pk]
    assert ids[2:] == [outputs["chat"].pk, outputs["api"].pk, outputs["summary"].pk, outputs["sure"].pk]


def test_a_thumbs_down_from_the_chat_page_puts_the_answer_first_with_its_comment(
    logged_in_client: Client, reviewer_client: Client, user: User, outputs: dict[str, ReviewItem]
) -> None:
    answer = outputs["chat"].message
    assert answer is not None
    response = logged_in_client.post(
        reverse("chat:feedback", args=[answer.conversation_id, answer.pk]),
        {"rating": "-1", "comment": "It left out the setup steps"},
    )
    assert response.status_code == 302
    ids = listed_ids(reviewer_client.get(reverse("review:queue") + "?feedback=down").content.decode())
    assert outputs["chat"].pk in ids
    assert outputs["summary"].pk not in ids
    page = reviewer_client.get(reverse("review:item", args=[outputs["chat"].pk])).content.decode()
    assert "It left out the setup steps" in page
    assert "thumbs down" in page
    # a change of mind moves it back down
    chat.feedback_set(answer=answer, user=user, rating=1, comment="")
    assert ReviewItem.objects.get(pk=outputs["chat"].pk).tier == Tier.LIKED


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kind=summary", {"summary"}),
        ("kind=api", {"api"}),
        ("kind=chat", {"chat", "disliked"}),
        ("kind=sentiment", {"sure", "unsure"}),
        ("model=minilm-sentiment", {"sure", "unsure"}),
        ("feedback=down", {"disliked"}),
        ("feedback=none", {"chat", "api", "summary", "sure", "unsure"}),
        ("low_confidence=on", {"unsure"}),
    ],
)
def test_filters(reviewer_client: Client, outputs: dict[str, ReviewItem], query: str, expected: set[str]) -> None:
    ids = set(listed_ids(reviewer_client.get(f"{reverse('review:queue')}?{query}").content.decode()))
    assert ids == {outputs[name].pk for name in expected}


def test_date_range_and_review_state_filters(
    reviewer_client: Client, reviewer: User, outputs: dict[str, ReviewItem]
) -> None:
    old = outputs["summary"]
    ReviewItem.objects.filter(pk=old.pk).update(produced_at=timezone.now() - timedelta(days=10))
    today = timezone.localdate().isoformat()
    ids = set(
        listed_ids(reviewer_client.get(f"{reverse('review:queue')}?since={today}&until={today}").content.decode())
    )
    assert old.pk not in ids
    assert outputs["chat"].pk in ids
    reviewer_client.get(reverse("review:item", args=[outputs["sure"].pk]))
    reviewer_client.post(reverse("review:verdict", args=[outputs["sure"].pk]), {"decision": "reject", "version": 0})
    assert outputs["sure"].pk not in listed_ids(reviewer_client.get(reverse("review:queue")).content.decode())
    reviewed = listed_ids(
        reviewer_client.get(f"{reverse('review:queue')}?state=reviewed&decision=reject").content.decode()
    )
    assert reviewed == [outputs["sure"].pk]
    page = reviewer_client.get(f"{reverse('review:queue')}?kind=sentiment").content.decode()
    assert 'data-reviewed="1" data-total="2"' in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=2026-05-02&until=2026-05-01", "before the start date"),
        ("kind=poem", "Select a valid choice"),
        ("since=yesterday", "Enter a valid date"),
        ("state=unreviewed&decision=approve", "have no verdict yet"),
    ],
)
def test_a_bad_filter_says_what_is_wrong(
    reviewer_client: Client, outputs: dict[str, ReviewItem], query: str, message: str
) -> None:
    response = reviewer_client.get(f"{reverse('review:queue')}?{query}")
    assert response.status_code == 200
    assert message in response.content.decode()
    export = reviewer_client.get(f"{reverse('review:export')}?{query}")
    assert export.status_code == 400
    assert message in export.content.decode()


def test_opening_an_item_claims_it_and_others_are_kept_out_until_it_expires(
    reviewer_client: Client, staff_user: User, reviewer: User, outputs: dict[str, ReviewItem]
) -> None:
    item = outputs["summary"]
    reviewer_client.get(reverse("review:item", args=[item.pk]))
    item.refresh_from_db()
    assert item.claimed_by == reviewer
    assert item.claimed_until is not None
    assert item.claimed_until > timezone.now()

    other = Client()
    other.force_login(staff_user)
    page = other.get(reverse("review:item", args=[item.pk])).content.decode()
    assert "reviewer@example.com is reviewing this item" in page
    assert "<fieldset disabled>" in page
    response = other.post(reverse("review:verdict", args=[item.pk]), {"decision": "approve", "version": 0})
    assert response.status_code == 409
    assert "reviewer@example.com is reviewing this item now" in response.content.decode()
    assert not item.verdicts.exists()
    # "next" skips what someone else holds
    step = other.get(reverse("review:step") + f"?after={outputs['chat'].pk}&kind=summary")
    assert step.status_code == 302
    assert step["Location"].startswith(reverse("review:queue"))

    # the claim runs out: the other reviewer takes the item over and can judge it
    ReviewItem.objects.filter(pk=item.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    page = other.get(reverse("review:item", args=[item.pk])).content.decode()
    assert "is reviewing this item" not in page
    response = other.post(reverse("review:verdict", args=[item.pk]), {"decision": "approve", "version": 0})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.decision == "approve"
    assert item.claimed_by is None


def test_next_and_previous_walk_the_filter_and_let_go_of_the_item_left(
    reviewer_client: Client, reviewer: User, outputs: dict[str, ReviewItem]
) -> None:
    start = reviewer_client.get(reverse("review:step"))
    assert start["Location"] == reverse("review:item", args=[outputs["disliked"].pk])
    reviewer_client.get(start["Location"])
    forward = reviewer_client.get(reverse("review:step") + f"?after={outputs['disliked'].pk}")
    assert forward["Location"] == reverse("review:item", args=[outputs["unsure"].pk])
    assert ReviewItem.objects.get(pk=outputs["disliked"].pk).claimed_by is None
    back = reviewer_client.get(reverse("review:step") + f"?after={outputs['unsure'].pk}&direction=previous")
    assert back["Location"] == reverse("review:item", args=[outputs["disliked"].pk])
    # nothing before the first item: it stays
    first = reviewer_client.get(reverse("review:step") + f"?after={outputs['disliked'].pk}&direction=previous")
    assert first["Location"] == reverse("review:item", args=[outputs["disliked"].pk])
    # once judged, an item leaves "not reviewed", but "previous" still returns to it
    judged = outputs["disliked"].pk
    reviewer_client.post(reverse("review:verdict", args=[judged]), {"decision": "approve", "version": 0})
    back = reviewer_client.get(reverse("review:step") + f"?after={outputs['unsure'].pk}&direction=previous")
    assert back["Location"] == reverse("review:item", args=[outputs["disliked"].pk])
    # the filter travels along
    in_filter = reviewer_client.get(reverse("review:step") + "?kind=sentiment")
    assert in_filter["Location"] == reverse("review:item", args=[outputs["unsure"].pk]) + "?kind=sentiment"


@pytest.mark.django_db(transaction=True)
def test_an_answer_written_by_the_real_worker_arrives_in_the_queue(
    user: User,
    start_worker: Callable[..., GenerationWorker],  # noqa: F811
    converse: Converse,  # noqa: F811
) -> None:
    _conversation, answer = converse("Tell me about rivers.", max_tokens=20)
    start_worker()
    wait_for(lambda: settled(answer), 60)
    assert answer.status == Message.Status.COMPLETE
    item = ReviewItem.objects.get(message=answer)
    assert (item.kind, item.owner, item.model_name) == (Kind.CHAT, user, "tiny-test-model")


def test_a_classified_batch_arrives_in_the_queue_least_certain_first(
    user: User, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PARLEY_SENTIMENT_REVIEW_BELOW = 1.0  # every label counts as unsure here
    monkeypatch.setattr(review_services, "ANALYZE_AFTER_ROWS", 1)  # as a large batch does, inside the task
    batch = sentiment.batch_create(
        user, name="", data=b"I adore this.\nIt is a chair.\nWorst day ever.\n\n", pasted=True
    )
    classify_batch.run(batch.job_id)
    items = list(ReviewItem.objects.filter(kind=Kind.SENTIMENT))  # in queue order
    assert len(items) == 3  # a blank line is not an output
    assert [i.confidence for i in items] == sorted(i.confidence for i in items)
    assert all(i.tier == Tier.LOW_CONFIDENCE for i in items)
    assert all(i.model_name and i.owner == user for i in items)


def test_an_empty_or_unfinished_answer_is_not_queued(user: User) -> None:
    empty = make_chat_answer(user, "x")
    assert empty.message_id is not None
    Message.objects.filter(pk=empty.message_id).update(content="")
    unfinished = make_chat_answer(user, "half an ans")
    assert unfinished.message_id is not None
    Message.objects.filter(pk=unfinished.message_id).update(status=Message.Status.GENERATING)
    ReviewItem.objects.all().delete()
    for message_id in (empty.message_id, unfinished.message_id):
        review_services.chat_answer_track(message_id=message_id)
    assert not ReviewItem.objects.exists()
    make_sentiment(user, [("", "empty", 1.0)])
    assert not ReviewItem.objects.exists()


def test_page_links_keep_the_filter(reviewer_client: Client, user: User, outputs: dict[str, ReviewItem]) -> None:
    make_sentiment(user, [(f"text {n}", "neutral", 0.9) for n in range(55)])
    first = reviewer_client.get(f"{reverse('review:queue')}?kind=sentiment").content.decode()
    assert len(listed_ids(first)) == 50
    assert 'href="?kind=sentiment&amp;page=2"' in first
    second = reviewer_client.get(f"{reverse('review:queue')}?kind=sentiment&page=2").content.decode()
    assert len(listed_ids(second)) == 7  # 55 + the two of the fixture
    assert 'href="?kind=sentiment&amp;page=1"' in second
