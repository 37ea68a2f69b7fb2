"""The top bar: every signed-in user sees the apps, reviewers see Review too."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from webapp.accounts.models import User
from webapp.review.services import REVIEWER_GROUP

pytestmark = pytest.mark.django_db

EVERYONE = ["Chat", "Documents", "Sentiment"]


def nav_labels(client: Client, path: str) -> list[str]:
    response = client.get(path)
    return [item["label"] for item in response.context["nav_items"]]


def test_a_user_sees_the_apps_but_not_review(logged_in_client: Client) -> None:
    assert nav_labels(logged_in_client, reverse("home")) == EVERYONE


@pytest.mark.parametrize("reviewer", ["staff", "group"])
def test_a_reviewer_sees_review_last(make_user: Callable[..., User], reviewer: str) -> None:
    user = make_user("reviewer@example.com", is_staff=reviewer == "staff")
    if reviewer == "group":
        user.groups.add(Group.objects.get_or_create(name=REVIEWER_GROUP)[0])
    client = Client()
    client.force_login(user)
    assert nav_labels(client, reverse("home")) == [*EVERYONE, "Review"]


def test_the_entry_of_the_page_shown_is_active(logged_in_client: Client) -> None:
    items = logged_in_client.get(reverse("chat:index"), follow=True).context["nav_items"]
    assert [item["label"] for item in items if item["active"]] == ["Chat"]
    home = logged_in_client.get(reverse("home"))
    assert all(not item["active"] for item in home.context["nav_items"])
    assert home.content.decode().count('class="card"') == len(EVERYONE)


def test_an_anonymous_visitor_gets_no_entries() -> None:
    response = Client().get(reverse("login"))
    assert list(response.context["nav_items"]) == []
