"""Tokens per user, model and day, the usage pages, and the daily budget at a send."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import Settings

from tests.waiting import wait_for
from tests.webapp.chat.conftest import Converse, finish, settled
from tests.webapp.chat.test_views import HX
from webapp.accounts.models import TokenUsage, User
from webapp.accounts.usage import usage_by_model, usage_record, usage_total
from webapp.chat.models import Conversation, Message
from webapp.chat.worker import GenerationWorker


def page(client: Client, name: str, **query: str) -> str:
    response = client.get(reverse(name), query)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_an_answer_and_the_title_after_it_count_on_their_users_usage_page(
    logged_in_client: Client, user: User, start_worker: Callable[..., GenerationWorker]
) -> None:
    assert "0 tokens" in page(logged_in_client, "usage")
    logged_in_client.post(reverse("chat:start"), {"content": "What is rye?"})
    answer = Message.objects.get(conversation__owner=user, role=Message.Role.ASSISTANT)
    start_worker()
    done = wait_for(lambda: settled(answer), what="the answer to end")
    assert done.status == Message.Status.COMPLETE
    assert done.prompt_tokens
    assert done.completion_tokens

    def title_counted() -> TokenUsage | None:
        row = TokenUsage.objects.filter(user=user).first()
        return row if row is not None and row.prompt_tokens > done.prompt_tokens else None

    # the worker asks the model for the conversation's title after its first answer: the
    # title's tokens are the owner's too, on the same model, though not an answer
    row = wait_for(title_counted, what="the title's tokens on the usage")
    assert [row] == list(TokenUsage.objects.filter(user=user))
    assert (row.model, row.day, row.answers) == (
        django_settings.PARLEY_INFERENCE.models.default,
        timezone.localdate(),
        1,
    )
    assert row.completion_tokens >= done.completion_tokens
    total = row.prompt_tokens + row.completion_tokens
    html = page(logged_in_client, "usage")
    assert f"{total:,} tokens" in html
    assert f"{total:,} tokens in 1 answer" in html  # this month
    assert "none on this Parley" in html  # no budget set


@pytest.mark.django_db
def test_usage_adds_up_per_model_and_keeps_days_apart(user: User, make_user: Callable[..., User]) -> None:
    usage_record(user_id=user.pk, model="small", prompt_tokens=10, completion_tokens=5)
    usage_record(user_id=user.pk, model="small", prompt_tokens=1, completion_tokens=2)
    usage_record(user_id=user.pk, model="large", prompt_tokens=100, completion_tokens=50)
    usage_record(user_id=make_user().pk, model="small", prompt_tokens=7, completion_tokens=7)
    today = timezone.localdate()
    last_month = today.replace(day=1) - timedelta(days=1)
    TokenUsage.objects.create(user=user, model="small", day=last_month, prompt_tokens=1000, answers=1)
    small = TokenUsage.objects.get(user=user, model="small", day=today)
    assert (small.prompt_tokens, small.completion_tokens, small.answers) == (11, 7, 2)
    assert usage_total(user_id=user.pk, since=today).total_tokens == 168
    assert usage_total(user_id=user.pk, since=today.replace(day=1)).total_tokens == 168  # last month left out
    assert [(row.model, row.total_tokens) for row in usage_by_model(since=today, user_id=user.pk)] == [
        ("large", 150),
        ("small", 18),
    ]


@pytest.mark.django_db
def test_over_the_daily_budget_a_send_is_refused_and_nothing_is_saved(
    logged_in_client: Client,
    user: User,
    converse: Converse,
    settings: Settings,
) -> None:
    conversation, answer = converse()
    finish(answer)
    settings.PARLEY_USER_DAILY_TOKENS = 100
    usage_record(user_id=user.pk, model="small", prompt_tokens=60, completion_tokens=39)
    # one token left: a send is let through, and the answer may take the user past the budget
    assert logged_in_client.post(reverse("chat:start"), {"content": "under"}).status_code == 302
    usage_record(user_id=user.pk, model="small", prompt_tokens=0, completion_tokens=1)
    conversations, messages = Conversation.objects.count(), Message.objects.count()
    for url in (reverse("chat:start"), reverse("chat:send", args=[conversation.pk])):
        response = logged_in_client.post(url, {"content": "over"}, **HX)
        assert response.status_code == 422
        assert "You have used 100 tokens today; the daily limit is 100." in response.content.decode()
    response = logged_in_client.post(reverse("chat:regenerate", args=[conversation.pk, answer.pk]), **HX)
    assert response.status_code == 422
    assert (Conversation.objects.count(), Message.objects.count()) == (conversations, messages)
    html = page(logged_in_client, "usage")
    assert "100 tokens of 100 a day" in html
    assert "new messages are refused until tomorrow" in html


@pytest.mark.django_db
def test_the_budget_counts_today_only_and_0_means_no_limit(
    logged_in_client: Client, user: User, settings: Settings
) -> None:
    TokenUsage.objects.create(
        user=user, model="small", day=timezone.localdate() - timedelta(days=1), prompt_tokens=10_000, answers=1
    )
    settings.PARLEY_USER_DAILY_TOKENS = 100
    assert logged_in_client.post(reverse("chat:start"), {"content": "yesterday's do not count"}).status_code == 302
    usage_record(user_id=user.pk, model="small", prompt_tokens=5_000, completion_tokens=0)
    assert logged_in_client.post(reverse("chat:start"), {"content": "refused"}, **HX).status_code == 422
    settings.PARLEY_USER_DAILY_TOKENS = 0
    assert logged_in_client.post(reverse("chat:start"), {"content": "no limit"}).status_code == 302


@pytest.mark.django_db
def test_staff_see_every_users_usage_per_model_and_others_are_refused(
    client: Client, user: User, staff_user: User, make_user: Callable[..., User]
) -> None:
    other = make_user()
    usage_record(user_id=user.pk, model="small", prompt_tokens=1200, completion_tokens=34)
    usage_record(user_id=other.pk, model="large", prompt_tokens=5, completion_tokens=5)
    TokenUsage.objects.create(
        user=other, model="small", day=timezone.localdate().replace(day=1) - timedelta(days=1), prompt_tokens=9
    )
    client.force_login(user)
    assert client.get(reverse("usage_everyone")).status_code == 403
    own = page(client, "usage")
    assert other.email not in own
    assert "large" not in own
    client.force_login(staff_user)
    html = page(client, "usage_everyone")
    assert user.email in html
    assert other.email in html
    assert "1,234" in html
    assert html.index(user.email) < html.index(other.email)  # the most tokens first
    assert other.email in page(client, "usage_everyone", period="month")
