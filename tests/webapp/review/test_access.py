"""Only reviewers (staff or the "reviewer" group) reach anything under /review/."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from webapp.accounts.models import User
from webapp.review.models import ReviewItem, Verdict

pytestmark = pytest.mark.django_db


def review_requests(item: ReviewItem) -> list[tuple[str, str, dict[str, str]]]:
    return [
        ("get", reverse("review:queue"), {}),
        ("get", reverse("review:step"), {}),
        ("get", reverse("review:item", args=[item.pk]), {}),
        ("post", reverse("review:verdict", args=[item.pk]), {"decision": "approve", "version": "0"}),
        ("post", reverse("review:diff", args=[item.pk]), {"correction": "x"}),
        ("get", reverse("review:stats"), {}),
        ("get", reverse("review:export"), {}),
        ("get", reverse("review:export") + "?dataset=sft", {}),
    ]


def test_a_user_who_is_not_a_reviewer_is_refused_everywhere(
    logged_in_client: Client, outputs: dict[str, ReviewItem]
) -> None:
    item = outputs["chat"]
    for method, url, data in review_requests(item):
        response = getattr(logged_in_client, method)(url, data)
        assert response.status_code == 403, url
    item.refresh_from_db()
    assert item.claimed_by is None
    assert not Verdict.objects.exists()


def test_an_anonymous_visitor_is_sent_to_log_in(client: Client, outputs: dict[str, ReviewItem]) -> None:
    for method, url, data in review_requests(outputs["chat"]):
        response = getattr(client, method)(url, data)
        assert response.status_code == 302, url
        assert "/accounts/login/" in response["Location"], url


def test_staff_and_reviewer_group_members_get_in(
    reviewer_client: Client, staff_user: User, outputs: dict[str, ReviewItem]
) -> None:
    assert reviewer_client.get(reverse("review:queue")).status_code == 200
    staff = Client()
    staff.force_login(staff_user)
    assert staff.get(reverse("review:queue")).status_code == 200
    assert staff.get(reverse("review:item", args=[outputs["summary"].pk])).status_code == 200


def test_an_unknown_item_is_not_found(reviewer_client: Client) -> None:
    assert reviewer_client.get(reverse("review:item", args=[999_999])).status_code == 404
    response = reviewer_client.post(reverse("review:verdict", args=[999_999]), {"decision": "approve", "version": 0})
    assert response.status_code == 404


def test_the_review_link_shows_for_reviewers_only(
    logged_in_client: Client, reviewer_client: Client, staff_user: User
) -> None:
    link = f'href="{reverse("review:queue")}"'
    assert link not in logged_in_client.get("/").content.decode()
    assert link in reviewer_client.get("/").content.decode()
    staff = Client()
    staff.force_login(staff_user)
    assert link in staff.get("/").content.decode()
