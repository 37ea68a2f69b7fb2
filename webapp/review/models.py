"""Reviewable model outputs and the verdicts staff give them.

A ``ReviewItem`` is made when an output is produced (a chat answer ends, a summary is
written, a sentiment batch is labelled) and points at that output; the output itself is
never copied or changed. What a chat answer was asked is kept on its item (``prompt``)
from that moment, so the review page and the export show it without reading the
conversation again. The latest verdict is kept on the item, next to the fields the
queue filters and sorts by, so the queue is one indexed table whatever the kind; every
verdict ever given stays as a ``Verdict`` row.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class Kind(models.TextChoices):
    CHAT = "chat", "chat answer"
    SUMMARY = "summary", "document summary"
    SENTIMENT = "sentiment", "sentiment label"
    API = "api", "API answer"


# The kinds whose output is an answer of the chat model to a conversation's messages: the
# chat page's and the OpenAI-compatible API's (webapp/api), reviewed and exported alike.
ANSWER_KINDS = (Kind.CHAT, Kind.API)


class Decision(models.TextChoices):
    APPROVE = "approve", "approve"
    NEEDS_FIX = "needs_fix", "needs fix"
    REJECT = "reject", "reject"


class Tier(models.IntegerChoices):
    """How much an item needs a human: the queue shows tier 0 first."""

    DISLIKED = 0, "the user disliked it"
    LOW_CONFIDENCE = 1, "the classifier was unsure"
    NORMAL = 2, "nothing flagged"
    LIKED = 3, "the user liked it"


class ReviewItem(models.Model):
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.OneToOneField("chat.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    summary = models.OneToOneField(
        "documents.Summary", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    sentiment_item = models.OneToOneField(
        "sentiment.SentimentItem", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Whose output it is, which model wrote it and when: filters, without joining the source.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    model_name = models.CharField(max_length=200, blank=True)
    produced_at = models.DateTimeField()
    # Chat: the messages the model was given, [{"role", "content"}, ...], the system
    # prompt in force first; empty for the other kinds (a default in the database too: the
    # sentiment items' INSERT leaves it out).
    prompt = models.JSONField(default=list, db_default=[], blank=True)
    user_rating = models.SmallIntegerField(null=True, blank=True)  # the owner's thumbs: 1, -1 or none
    confidence = models.FloatField(default=1.0)  # the classifier's score; 1 for text outputs
    # Orders items within a tier: the confidence of an unsure label (least sure first), 1
    # for everything else, so sure labels queue by age with the text outputs.
    certainty = models.FloatField(default=1.0)
    tier = models.SmallIntegerField(choices=Tier.choices, default=Tier.NORMAL)
    # Whoever opened it last, until when; nobody else can give a verdict meanwhile.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The latest verdict, copied here for filters and statistics.
    latest = models.OneToOneField("Verdict", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decision = models.CharField(max_length=16, choices=Decision.choices, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    tags = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    corrected = models.BooleanField(default=False)  # the latest verdict carries a correction or a label
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # Counts verdicts; a verdict form carries the version it was opened at, so a second
    # reviewer's stale form is refused instead of silently replacing the first verdict.
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Every key ascending, so "the items after this one" is one row comparison that
        # an index answers (see ``selectors.neighbour``).
        ordering = ["tier", "certainty", "produced_at", "pk"]
        constraints = [
            models.CheckConstraint(
                name="review_item_points_at_its_output",
                condition=(
                    Q(kind__in=ANSWER_KINDS, message__isnull=False, summary__isnull=True, sentiment_item__isnull=True)
                    | Q(kind=Kind.SUMMARY, message__isnull=True, summary__isnull=False, sentiment_item__isnull=True)
                    | Q(kind=Kind.SENTIMENT, message__isnull=True, summary__isnull=True, sentiment_item__isnull=False)
                ),
            ),
        ]
        indexes = [
            models.Index(fields=["tier", "certainty", "produced_at", "id"], name="review_queue_order"),
            models.Index(
                fields=["tier", "certainty", "produced_at", "id"],
                condition=Q(decision=""),
                name="review_queue_unreviewed",
            ),
            models.Index(fields=["kind", "produced_at"], name="review_kind_produced"),
            models.Index(fields=["model_name"], name="review_model"),
            models.Index(fields=["reviewed_at"], name="review_reviewed_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def reviewed(self) -> bool:
        return bool(self.decision)

    def held_by_other(self, user: object, now: datetime) -> bool:
        """Someone other than ``user`` opened it and their hold has not run out."""
        return (
            self.claimed_by_id is not None
            and self.claimed_by_id != getattr(user, "pk", None)
            and self.claimed_until is not None
            and self.claimed_until > now
        )

    @property
    def is_answer(self) -> bool:
        return self.kind in ANSWER_KINDS

    @property
    def is_text(self) -> bool:
        return self.kind != Kind.SENTIMENT

    @property
    def output_text(self) -> str:
        """The output under review (needs its source selected with it)."""
        if self.message is not None:
            return self.message.content
        if self.summary is not None:
            return self.summary.text
        assert self.sentiment_item is not None
        return f"{self.sentiment_item.label}: {self.sentiment_item.text}"


class Verdict(models.Model):
    """One reviewer's judgement of one item; never changed, a new one supersedes it."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="verdicts")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_verdicts")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    tags = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    comment = models.TextField(blank=True)
    correction = models.TextField(blank=True)  # text outputs: the output as it should have been
    corrected_label = models.CharField(max_length=16, blank=True)  # sentiment: the right label
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                name="review_rating_1_to_5", condition=Q(rating__isnull=True) | Q(rating__range=(1, 5))
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} on {self.item}"
