"""Tokens per user, model and day, and the daily budget ``PARLEY_USER_DAILY_TOKENS``.

``usage_record`` is called where an answer ends (``webapp/chat/answers.py``), in the same
transaction, for chat and ``/v1`` answers alike, and where a summary is saved
(``webapp/documents/summaries.py``), and where the generation worker has written a
conversation's title (``webapp/chat/worker.py``): prompt and completion tokens as the model counted
them. The budget counts both, across every model, for the day in ``TIME_ZONE``; it is
checked when a message is sent or a summary asked for (``budget_refusal``), so an answer
begun under the budget is written to its end even if it takes the user past it, and the
next send is refused. 0 means no budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from webapp.accounts.models import TokenUsage


def usage_record(*, user_id: int, model: str, prompt_tokens: int, completion_tokens: int, answers: int = 1) -> None:
    """Add one answer's tokens to its user's row for ``model`` today, made if missing
    (``answers=0`` for tokens that made no answer of their own: a conversation's title).

    One ``INSERT … ON CONFLICT DO UPDATE``: two workers ending answers of one user at the
    same moment both count, and neither waits for a row the other is making.
    """
    table = TokenUsage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, model, day, prompt_tokens, completion_tokens, answers)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, model, day) DO UPDATE SET"
            f" prompt_tokens = {table}.prompt_tokens + EXCLUDED.prompt_tokens,"
            f" completion_tokens = {table}.completion_tokens + EXCLUDED.completion_tokens,"
            f" answers = {table}.answers + EXCLUDED.answers",
            [user_id, model, timezone.localdate(), prompt_tokens, completion_tokens, answers],
        )


@dataclass(frozen=True)
class UsageTotal:
    prompt_tokens: int
    completion_tokens: int
    answers: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def usage_total(*, user_id: int, since: date, until: date | None = None) -> UsageTotal:
    """One user's tokens on every model from ``since`` to ``until`` (both included; today
    when not given)."""
    sums = TokenUsage.objects.filter(user_id=user_id, day__gte=since, day__lte=until or timezone.localdate()).aggregate(
        prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), answers=Sum("answers")
    )
    return UsageTotal(sums["prompt"] or 0, sums["completion"] or 0, sums["answers"] or 0)


def month_start(day: date) -> date:
    return day.replace(day=1)


def seconds_until_tomorrow() -> int:
    """Until the budget's day turns, in ``TIME_ZONE``: when a refused client may try again."""
    now = timezone.localtime()
    tomorrow = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=now.tzinfo)
    return max(1, int((tomorrow - now).total_seconds()))


def budget_refusal(*, user_id: int) -> str | None:
    """Why this user may not send another message or ask for a summary today, or None."""
    budget = settings.PARLEY_USER_DAILY_TOKENS
    if not budget:
        return None
    used = usage_total(user_id=user_id, since=timezone.localdate()).total_tokens
    if used < budget:
        return None
    return (
        f"You have used {used:,} tokens today; the daily limit is {budget:,}. "
        "Messages and summaries can be asked for again tomorrow (the day starts at midnight, "
        f"{settings.TIME_ZONE})."
    )


@dataclass(frozen=True)
class UsageRow:
    """Tokens of one user (``email``; empty on one user's own page) on one model."""

    email: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    answers: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def usage_by_model(*, since: date, user_id: int | None = None) -> list[UsageRow]:
    """Tokens per user and model from ``since`` to today: one user's when ``user_id`` is
    given, else everyone's (for staff), the most tokens first."""
    rows = TokenUsage.objects.filter(day__gte=since, day__lte=timezone.localdate())
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
    summed = (
        rows.values("user__email", "model")
        .annotate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), count=Sum("answers"))
        .order_by()
    )
    found = [
        UsageRow(
            email=row["user__email"] if user_id is None else "",
            model=row["model"],
            prompt_tokens=row["prompt"],
            completion_tokens=row["completion"],
            answers=row["count"],
        )
        for row in summed
    ]
    return sorted(found, key=lambda row: (-row.total_tokens, row.email, row.model))
