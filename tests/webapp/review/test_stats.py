"""The numbers page: approval and ratings per kind, per model and per day, and common tags."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from webapp.accounts.models import User
from webapp.review import selectors, services
from webapp.review.models import ReviewItem

pytestmark = pytest.mark.django_db


def give(
    item: ReviewItem, reviewer: User, decision: str, rating: int | None = None, tags: list[str] | None = None
) -> None:
    item.refresh_from_db()
    services.verdict_submit(
        item_id=item.pk, reviewer=reviewer, seen_version=item.version,
        verdict=services.VerdictInput(decision, rating, tags or [], "", "", ""),
    )  # fmt: skip


def test_approval_and_ratings_per_kind_model_and_day(
    reviewer_client: Client, reviewer: User, outputs: dict[str, ReviewItem]
) -> None:
    give(outputs["chat"], reviewer, "approve", 4, ["helpful"])
    give(outputs["disliked"], reviewer, "reject", 1, ["wrong facts", "helpful"])
    give(outputs["summary"], reviewer, "approve", 5)
    give(outputs["sure"], reviewer, "needs_fix", tags=["wrong facts"])
    give(outputs["sure"], reviewer, "approve")  # only the latest verdict counts

    numbers = selectors.stats()
    assert (numbers.overall.reviewed, numbers.overall.approved) == (4, 3)
    kinds = {row.name: row for row in numbers.by_kind}
    assert kinds["chat answer"].approval_rate == 0.5
    assert kinds["chat answer"].mean_rating == 2.5
    assert kinds["document summary"].approved == 1
    assert kinds["sentiment label"].approved == 1
    models = {row.name: row for row in numbers.by_model}
    assert models["smollm2-135m"].reviewed == 3
    assert models["minilm-sentiment"].reviewed == 1
    assert len(numbers.by_day) == 1
    assert numbers.by_day[0].reviewed == 4
    assert numbers.tags == [("helpful", 2), ("wrong facts", 1)]

    page = reviewer_client.get(reverse("review:stats")).content.decode()
    assert "75% approved" in page
    assert '<svg class="chart"' in page
    assert "3 of 4 approved (75%)" in page
    assert "wrong facts" in page


def test_the_numbers_page_with_nothing_reviewed(reviewer_client: Client) -> None:
    page = reviewer_client.get(reverse("review:stats")).content.decode()
    assert "0 items reviewed" in page
    assert "No verdicts yet." in page
