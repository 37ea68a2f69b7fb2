"""Writes of the review queue: items made when outputs are produced, claims and verdicts.

Every write that two reviewers could race on is a conditional UPDATE or runs under a row
lock, and the caller is told when it lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from inference.prompts import system_with_documents
from webapp.accounts.models import User
from webapp.chat.models import Conversation, Feedback, Message
from webapp.chat.selectors import context_for, documents_context
from webapp.documents.models import Summary
from webapp.review.models import Decision, Kind, ReviewItem, Tier, Verdict
from webapp.sentiment.models import SentimentBatch, SentimentItem

REVIEWER_GROUP = "reviewer"
ANALYZE_AFTER_ROWS = 10_000


def can_review(user: object) -> bool:
    """Staff, and members of the "reviewer" group, may review; nobody else."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    assert isinstance(user, User)
    return user.is_staff or user.groups.filter(name=REVIEWER_GROUP).exists()


def _tier(*, user_rating: int | None) -> int:
    if user_rating == Feedback.Rating.DOWN:
        return Tier.DISLIKED
    if user_rating == Feedback.Rating.UP:
        return Tier.LIKED
    return Tier.NORMAL


# ---- outputs become items ---------------------------------------------------------------


def _add_once(item: ReviewItem) -> None:
    """Insert an output's item unless it has one (its one-to-one key turns a repeat into nothing)."""
    ReviewItem.objects.bulk_create([item], ignore_conflicts=True)


def chat_prompt(*, message: Message) -> list[dict[str, str]]:
    """The system prompt in force when the answer was written, with what it was given of the
    conversation's documents, then the branch above it."""
    turns = [turn for turn in context_for(answer=message) if turn["role"] != "system"]
    system = system_with_documents(
        str(message.settings.get("system_prompt", "")), documents_context(answer_ids=[message.pk]).get(message.pk, "")
    )
    return ([{"role": "system", "content": system}] if system else []) + turns


def chat_answer_track(*, message_id: int) -> None:
    """Queue a finished answer for review with what it was asked (once; nothing for an
    empty or unfinished one)."""
    message = (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, role=Message.Role.ASSISTANT)
        .exclude(status__in=(*Message.IN_FLIGHT, Message.Status.FAILED))
        .exclude(content="")
        .first()
    )
    if message is None:
        return
    feedback = Feedback.objects.filter(message_id=message_id).values_list("rating", flat=True).first()
    _add_once(
        ReviewItem(
            kind=Kind.API if message.conversation.origin == Conversation.Origin.API else Kind.CHAT,
            message=message,
            owner_id=message.conversation.owner_id,
            model_name=message.model_name,
            produced_at=message.created_at,
            prompt=chat_prompt(message=message),
            user_rating=feedback,
            tier=_tier(user_rating=feedback),
        )
    )


def feedback_sync(*, message_id: int) -> None:
    """Carry an owner's thumbs to the answer's item, which the queue sorts and filters by."""
    rating = Feedback.objects.filter(message_id=message_id).values_list("rating", flat=True).first()
    updated = ReviewItem.objects.filter(message_id=message_id).update(
        user_rating=rating, tier=_tier(user_rating=rating)
    )
    if not updated:
        chat_answer_track(message_id=message_id)  # e.g. a thumbs down on an interrupted answer


def summary_track(*, summary_id: int) -> None:
    summary = Summary.objects.select_related("document").filter(pk=summary_id).exclude(text="").first()
    if summary is None:
        return
    _add_once(
        ReviewItem(
            kind=Kind.SUMMARY,
            summary=summary,
            owner_id=summary.document.owner_id,
            model_name=summary.model_name,
            produced_at=summary.created_at,
        )
    )


def sentiment_batch_track(*, batch_id: int) -> int:
    """Queue every labelled item of a batch, in one statement; returns how many were added.

    Labels scored below the review threshold queue ahead, the least certain first. An
    item counts when its label is one of the batch's (so not a blank text's).
    """
    table, items, batches = (model._meta.db_table for model in (ReviewItem, SentimentItem, SentimentBatch))
    threshold = settings.PARLEY_SENTIMENT_REVIEW_BELOW
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (kind, sentiment_item_id, owner_id, model_name, produced_at, confidence, "
            "certainty, tier, tags, corrected, version, decision, created_at) "
            "SELECT %s, item.id, batch.owner_id, batch.model_name, batch.created_at, COALESCE(item.score, 1), "
            "CASE WHEN item.score < %s THEN item.score ELSE 1 END, "
            "CASE WHEN item.score < %s THEN %s ELSE %s END, '{}', false, 0, '', now() "
            f"FROM {items} AS item JOIN {batches} AS batch ON batch.id = item.batch_id "
            "WHERE batch.id = %s AND batch.labels ? item.label "
            "ON CONFLICT (sentiment_item_id) DO NOTHING",
            [
                Kind.SENTIMENT,
                threshold,
                threshold,
                Tier.LOW_CONFIDENCE,
                Tier.NORMAL,
                batch_id,
            ],
        )
        added = cursor.rowcount
        if added >= ANALYZE_AFTER_ROWS:
            # Fresh statistics now rather than whenever autovacuum next looks: with stale
            # ones the planner can leave the queue's indexes unused (docs/decisions.md).
            cursor.execute(f"ANALYZE {table}")
        return added


# ---- claims -------------------------------------------------------------------------------


def _claim_expiry(now: datetime) -> datetime:
    return now + timedelta(minutes=settings.PARLEY_REVIEW_CLAIM_MINUTES)


def claimable_by(reviewer: User, now: datetime) -> Q:
    """Items nobody else holds: unclaimed, claimed by ``reviewer``, or with an expired claim."""
    return Q(claimed_by__isnull=True) | Q(claimed_by=reviewer) | Q(claimed_until__lte=now)


def item_claim(*, item_id: int, reviewer: User) -> bool:
    """Hold an item for ``reviewer`` (or renew their hold); False when someone else holds it."""
    now = timezone.now()
    return bool(
        ReviewItem.objects.filter(claimable_by(reviewer, now), pk=item_id).update(
            claimed_by=reviewer, claimed_until=_claim_expiry(now)
        )
    )


def item_release(*, item_id: int, reviewer: User) -> None:
    ReviewItem.objects.filter(pk=item_id, claimed_by=reviewer).update(claimed_by=None, claimed_until=None)


# ---- verdicts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictInput:
    decision: str
    rating: int | None
    tags: list[str]
    comment: str
    correction: str  # "" when the output stands as it is
    corrected_label: str  # "" when the label stands


class ReviewConflict(Exception):
    """Someone else judged or holds the item; the message says who, nothing was saved."""


def verdict_submit(*, item_id: int, reviewer: User, seen_version: int, verdict: VerdictInput) -> Verdict:
    """Record a verdict, keeping every earlier one; refused if the item moved on meanwhile.

    ``seen_version`` is the item's version when the reviewer's form was drawn: if another
    verdict landed since, this one would silently replace it, so it is refused and the
    reviewer decides again with the other verdict in view.
    """
    if verdict.decision not in Decision.values:
        raise ValueError(f"unknown decision {verdict.decision!r}")
    with transaction.atomic():
        item = (
            ReviewItem.objects.select_for_update(of=("self",))
            .select_related("claimed_by", "latest__reviewer")
            .get(pk=item_id)
        )
        if item.held_by_other(reviewer, timezone.now()):
            assert item.claimed_by is not None
            raise ReviewConflict(f"{item.claimed_by.email} is reviewing this item now; your verdict was not saved.")
        if item.version != seen_version:
            latest = item.latest
            who = (
                f"{latest.reviewer.email} recorded “{latest.get_decision_display()}”" if latest else "A verdict changed"
            )
            raise ReviewConflict(
                f"{who} while you had this item open; your verdict was not saved. "
                "It is still in the form: submit again to replace theirs."
            )
        saved = Verdict.objects.create(
            item=item,
            reviewer=reviewer,
            decision=verdict.decision,
            rating=verdict.rating,
            tags=verdict.tags,
            comment=verdict.comment,
            correction=verdict.correction,
            corrected_label=verdict.corrected_label,
        )
        ReviewItem.objects.filter(pk=item.pk).update(
            latest=saved,
            decision=saved.decision,
            rating=saved.rating,
            tags=saved.tags,
            corrected=bool(saved.correction or saved.corrected_label),
            reviewed_at=saved.created_at,
            version=item.version + 1,
            claimed_by=None,
            claimed_until=None,
        )
    return saved
