"""Reads of sentiment batches, scoped to their owner, and a batch's label counts.

Labels are the batch's own (``SentimentBatch.labels``, in the classifier's order), so a
batch keeps reading right after the configured classifier changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet
from django.http import Http404

from webapp.accounts.models import User
from webapp.sentiment.models import EMPTY, SentimentBatch, SentimentItem
from webapp.sentiment.sources import csv_preview


@dataclass(frozen=True)
class LabelCount:
    label: str
    count: int
    share: float  # 0..1


def batches_for(user: User) -> QuerySet[SentimentBatch]:
    return SentimentBatch.objects.filter(owner=user).select_related("job").defer("raw")


def batch_get(user: User, batch_id: object) -> SentimentBatch:
    try:
        return SentimentBatch.objects.select_related("job").get(pk=int(str(batch_id)), owner=user)
    except (SentimentBatch.DoesNotExist, ValueError):
        raise Http404("No such batch.") from None


def batch_preview(batch: SentimentBatch) -> list[list[str]]:
    return csv_preview(bytes(batch.raw))[1]


def batch_counts(batch: SentimentBatch) -> list[LabelCount]:
    """Every label of the batch, in order, with its items; EMPTY only where there are blank texts.

    A label found on items but not in the batch's list (items labelled by an earlier
    classifier, before a retry) is counted after the batch's own.
    """
    counts = dict(batch.items.exclude(label="").values_list("label").annotate(n=Count("pk")).values_list("label", "n"))
    total = sum(counts.values()) or 1
    order = [*batch.labels, *sorted(set(counts) - {*batch.labels, EMPTY})]
    if EMPTY in counts:
        order.append(EMPTY)
    return [LabelCount(label, counts.get(label, 0), counts.get(label, 0) / total) for label in order]


def batch_items(batch: SentimentBatch, *, label: str = "", below: float | None = None) -> QuerySet[SentimentItem]:
    items = batch.items.all()
    if label:
        items = items.filter(label=label)
    if below is not None:
        items = items.filter(score__lt=below)
    return items
