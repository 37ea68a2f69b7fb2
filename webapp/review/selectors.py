"""Reads of the review queue: the filtered, ordered queue, one item with its input, the
numbers and the dataset export.

A chat answer's prompt is read from its item (stored when the item was made), never
rebuilt from the conversation: the export reads one row per item.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Avg, BooleanField, Count, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone

from webapp.accounts.models import User
from webapp.chat.models import Message
from webapp.review.models import ANSWER_KINDS, Decision, Kind, ReviewItem
from webapp.review.services import claimable_by

EXCERPT_CHARACTERS = 3000


@dataclass(frozen=True)
class QueueFilter:
    kind: str = ""
    model: str = ""
    since: date | None = None
    until: date | None = None
    feedback: str = ""  # "down", "up", "none" or any
    low_confidence: bool = False
    state: str = "unreviewed"  # "reviewed", "all"
    decision: str = ""

    @classmethod
    def from_cleaned(cls, data: dict[str, Any]) -> QueueFilter:
        return cls(
            kind=data.get("kind") or "",
            model=data.get("model") or "",
            since=data.get("since"),
            until=data.get("until"),
            feedback=data.get("feedback") or "",
            low_confidence=bool(data.get("low_confidence")),
            state=data.get("state") or "unreviewed",
            decision=data.get("decision") or "",
        )


def _in_scope(queue_filter: QueueFilter) -> QuerySet[ReviewItem]:
    """Items the filter covers, reviewed or not (the progress counter's whole)."""
    items = ReviewItem.objects.all()
    if queue_filter.kind:
        items = items.filter(kind=queue_filter.kind)
    if queue_filter.model:
        items = items.filter(model_name=queue_filter.model)
    if queue_filter.since:
        items = items.filter(produced_at__date__gte=queue_filter.since)
    if queue_filter.until:
        items = items.filter(produced_at__date__lte=queue_filter.until)
    if queue_filter.feedback == "down":
        items = items.filter(user_rating=-1)
    elif queue_filter.feedback == "up":
        items = items.filter(user_rating=1)
    elif queue_filter.feedback == "none":
        items = items.filter(user_rating__isnull=True)
    if queue_filter.low_confidence:
        items = items.filter(kind=Kind.SENTIMENT, confidence__lt=settings.PARLEY_SENTIMENT_REVIEW_BELOW)
    return items


def queue(queue_filter: QueueFilter) -> QuerySet[ReviewItem]:
    """The filtered queue, most in need of a human first (the model's ordering)."""
    items = _in_scope(queue_filter)
    if queue_filter.state == "unreviewed":
        items = items.filter(decision="")
    elif queue_filter.state == "reviewed":
        items = items.exclude(decision="")
    if queue_filter.decision:
        items = items.filter(decision=queue_filter.decision)
    return items


@dataclass(frozen=True)
class Progress:
    reviewed: int
    total: int

    @property
    def remaining(self) -> int:
        return self.total - self.reviewed


def progress(queue_filter: QueueFilter) -> Progress:
    counts = _in_scope(queue_filter).aggregate(total=Count("id"), reviewed=Count("id", filter=~Q(decision="")))
    return Progress(reviewed=counts["reviewed"], total=counts["total"])


def model_names() -> list[str]:
    return list(
        ReviewItem.objects.exclude(model_name="").order_by("model_name").values_list("model_name", flat=True).distinct()
    )


def neighbour(
    *, item: ReviewItem, queue_filter: QueueFilter, reviewer: User, forward: bool = True
) -> ReviewItem | None:
    """The next (or previous) item of the filtered queue that nobody else holds.

    Keyset paging over the queue's order: one row comparison on (tier, certainty,
    produced_at, id), which the queue's indexes answer without reading the items before
    it. It works even when ``item`` has just left the filter (reviewed items leave "not
    reviewed"). Going forward past the end wraps round, so skipped items come back; going
    back also passes reviewed items, so "previous" returns to the item just judged.
    """
    table = ReviewItem._meta.db_table
    keys = f"({table}.tier, {table}.certainty, {table}.produced_at, {table}.id)"
    position = RawSQL(
        f"{keys} {'>' if forward else '<'} (%s, %s, %s, %s)",
        (item.tier, item.certainty, item.produced_at, item.pk),
        output_field=BooleanField(),
    )
    if not forward and queue_filter.state == "unreviewed":
        queue_filter = replace(queue_filter, state="all")
    candidates = queue(queue_filter).filter(claimable_by(reviewer, timezone.now())).exclude(pk=item.pk)
    if not forward:
        return candidates.reverse().alias(beyond=position).filter(beyond=True).first()
    return candidates.alias(beyond=position).filter(beyond=True).first() or candidates.first()


# ---- one item, with what the model was given -------------------------------------------


def item_get(item_id: int) -> ReviewItem:
    item = (
        ReviewItem.objects.select_related(
            "owner",
            "claimed_by",
            "latest",
            "message__conversation",
            "message__feedback",
            "summary__document",
            "sentiment_item__batch",
        )
        .filter(pk=item_id)
        .first()
    )
    if item is None:
        raise Http404("No such review item.")
    return item


@dataclass
class ItemView:
    """An item's input and output as the review page and the export show them."""

    item: ReviewItem
    output: str  # the text written, or the label given
    prompt: list[dict[str, str]] = field(default_factory=list)  # chat: the messages the model saw
    settings: dict[str, Any] = field(default_factory=dict)
    source_title: str = ""
    excerpt: str = ""  # summaries: the start of the document; sentiment: the text classified
    excerpt_cut: bool = False
    facts: list[tuple[str, str]] = field(default_factory=list)
    feedback_rating: int | None = None
    feedback_comment: str = ""


def item_view(item: ReviewItem) -> ItemView:
    if item.is_answer:
        return _chat_view(item)
    if item.kind == Kind.SUMMARY:
        return _summary_view(item)
    return _sentiment_view(item)


def _chat_view(item: ReviewItem) -> ItemView:
    message = item.message
    assert message is not None
    feedback = message.feedback_or_none
    facts = [("conversation", str(message.conversation))]
    if message.completion_tokens is not None:
        facts.append(("tokens", f"{message.prompt_tokens} in, {message.completion_tokens} out"))
    if message.tokens_per_second:
        facts.append(("speed", f"{message.tokens_per_second:.1f} tokens/s"))
    if message.status != Message.Status.COMPLETE:
        facts.append(("status", message.get_status_display()))
    if message.trimmed_messages:
        facts.append(("context", f"{message.trimmed_messages} oldest messages trimmed to fit"))
    return ItemView(
        item=item,
        output=message.content,
        prompt=item.prompt,
        settings={k: v for k, v in message.settings.items() if k != "system_prompt"},
        source_title=str(message.conversation),
        facts=facts,
        feedback_rating=feedback.rating if feedback else None,
        feedback_comment=feedback.comment if feedback else "",
    )


def _summary_view(item: ReviewItem) -> ItemView:
    summary = item.summary
    assert summary is not None
    document = summary.document
    return ItemView(
        item=item,
        output=summary.text,
        settings={"length": summary.length, "form": summary.form},
        source_title=document.name,
        excerpt=document.text[:EXCERPT_CHARACTERS],
        excerpt_cut=len(document.text) > EXCERPT_CHARACTERS,
        facts=[("document", f"{document.name} · {document.words or 0:,} words · {document.pages or '?'} pages")],
    )


def _sentiment_view(item: ReviewItem) -> ItemView:
    entry = item.sentiment_item
    assert entry is not None
    probabilities = ", ".join(f"{label} {share:.0%}" for label, share in entry.probabilities.items())
    return ItemView(
        item=item,
        output=entry.label,
        source_title=entry.batch.name,
        excerpt=entry.text,
        facts=[("batch", f"{entry.batch.name}, row {entry.row}"), ("confidence", f"{item.confidence:.0%}"),
               ("probabilities", probabilities)],
    )  # fmt: skip


# ---- numbers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictCounts:
    name: str
    reviewed: int
    approved: int
    needs_fix: int
    rejected: int
    mean_rating: float | None

    @property
    def approval_rate(self) -> float:
        return self.approved / self.reviewed if self.reviewed else 0.0


@dataclass(frozen=True)
class Stats:
    overall: VerdictCounts
    by_kind: list[VerdictCounts]
    by_model: list[VerdictCounts]
    by_day: list[VerdictCounts]  # name is the ISO date
    tags: list[tuple[str, int]]


_COUNTS = {
    "reviewed": Count("id"),
    "approved": Count("id", filter=Q(decision=Decision.APPROVE)),
    "needs_fix": Count("id", filter=Q(decision=Decision.NEEDS_FIX)),
    "rejected": Count("id", filter=Q(decision=Decision.REJECT)),
    "mean_rating": Avg("rating"),
}


def _counts(name: str, row: Mapping[str, Any]) -> VerdictCounts:
    return VerdictCounts(
        name=name,
        reviewed=row["reviewed"],
        approved=row["approved"],
        needs_fix=row["needs_fix"],
        rejected=row["rejected"],
        mean_rating=row["mean_rating"],
    )


def stats(*, days: int = 30) -> Stats:
    """Approval and ratings of the latest verdicts, per kind, per model and per day."""
    reviewed = ReviewItem.objects.exclude(decision="").order_by()
    kinds = dict(Kind.choices)
    by_kind = [_counts(kinds[row["kind"]], row) for row in reviewed.values("kind").annotate(**_COUNTS).order_by("kind")]
    by_model = sorted(
        (_counts(row["model_name"] or "unknown", row) for row in reviewed.values("model_name").annotate(**_COUNTS)),
        key=lambda counts: (-counts.reviewed, counts.name),
    )
    since = timezone.now() - timedelta(days=days)
    by_day = [
        _counts(row["day"].isoformat(), row)
        for row in reviewed.filter(reviewed_at__gte=since)
        .annotate(day=TruncDate("reviewed_at"))
        .values("day")
        .annotate(**_COUNTS)
        .order_by("day")
    ]
    return Stats(
        overall=_counts("all", reviewed.aggregate(**_COUNTS)),
        by_kind=by_kind,
        by_model=by_model,
        by_day=by_day,
        tags=_top_tags(),
    )


def _top_tags(limit: int = 15) -> list[tuple[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tag, count(*) FROM {ReviewItem._meta.db_table}, unnest(tags) AS tag "
            "WHERE decision <> '' GROUP BY tag ORDER BY count(*) DESC, tag LIMIT %s",
            [limit],
        )
        return [(tag, count) for tag, count in cursor.fetchall()]


# ---- export -----------------------------------------------------------------------------

# What each dataset keeps: everything reviewed, or what a kind of tuning can use.
DATASETS = {
    "reviews": "every reviewed item, with its verdict",
    "sft": "chat answers and summaries, approved or corrected, as messages",
    "preference": "corrected chat answers and summaries as chosen / rejected pairs",
    "sentiment": "sentiment texts with the approved or corrected label",
}


def export_items(queue_filter: QueueFilter, dataset: str) -> QuerySet[ReviewItem]:
    items = queue(replace(queue_filter, state="reviewed"))
    usable = Q(decision=Decision.APPROVE) | Q(corrected=True)
    if dataset == "sft":
        items = items.filter(usable, kind__in=(*ANSWER_KINDS, Kind.SUMMARY))
    elif dataset == "preference":
        items = items.filter(kind__in=(*ANSWER_KINDS, Kind.SUMMARY), corrected=True)
    elif dataset == "sentiment":
        items = items.filter(usable, kind=Kind.SENTIMENT)
    # a chat item carries its prompt: its answer is read in the same row, its conversation not at all;
    # the document's text is the summary's prompt, but its uploaded bytes and search vector are never read
    return (
        items.select_related("latest__reviewer", "message__grounding", "summary__document", "sentiment_item__batch")
        .defer("summary__document__original", "summary__document__search", "sentiment_item__batch__raw")
        .order_by("pk")
    )


EXPORT_CHUNK_ROWS = 200  # rows a read brings; a summary's row carries its document's text


def export_lines(queue_filter: QueueFilter, dataset: str) -> Iterator[str]:
    """One JSON object a line, read in chunks, so a large export never sits in memory.

    The view streams it through ``webapp.core.streaming.streamed_body``, so under ASGI too
    the first lines leave before the last rows are read.
    """
    for item in export_items(queue_filter, dataset).iterator(chunk_size=EXPORT_CHUNK_ROWS):
        yield json.dumps(export_record(item), ensure_ascii=False) + "\n"


def _summary_prompt(item: ReviewItem) -> list[dict[str, str]]:
    summary = item.summary
    assert summary is not None
    ask = f"Summarize this document ({summary.length}, {summary.get_form_display()})."
    return [{"role": "user", "content": f"{ask}\n\n{summary.document.text}"}]


def export_record(item: ReviewItem) -> dict[str, Any]:
    """One reviewed item as a dataset line: its training fields and its provenance."""
    verdict = item.latest
    assert verdict is not None
    record: dict[str, Any] = {}
    settings_used: dict[str, Any] = {}
    grounding = None
    if item.kind == Kind.SENTIMENT:
        entry = item.sentiment_item
        assert entry is not None
        record = {"text": entry.text, "label": verdict.corrected_label or entry.label, "model_label": entry.label}
    else:
        if item.is_answer:
            assert item.message is not None
            prompt, original = item.prompt, item.message.content
            settings_used = {k: v for k, v in item.message.settings.items() if k != "system_prompt"}
            grounding = item.message.grounding_or_none
        else:
            assert item.summary is not None
            prompt, original = _summary_prompt(item), item.summary.text
            settings_used = {"length": item.summary.length, "form": item.summary.form}
        record = {"prompt": prompt, "original": original}
        if verdict.decision == Decision.APPROVE or verdict.correction:
            record["messages"] = [*prompt, {"role": "assistant", "content": verdict.correction or original}]
        if verdict.correction:
            record["chosen"], record["rejected"] = verdict.correction, original
    record["provenance"] = {
        "item": item.pk,
        "kind": item.kind,
        "model": item.model_name,
        "settings": settings_used,
        "created": item.produced_at.isoformat(),
        "reviewer": verdict.reviewer.email,
        "reviewed": verdict.created_at.isoformat(),
        "verdict": verdict.decision,
        "rating": verdict.rating,
        "tags": verdict.tags,
        "comment": verdict.comment,
    }
    if grounding is not None:
        # the passages themselves are in the prompt's system message, as the model saw them;
        # here, where each came from, to trace a line back to its documents
        record["provenance"]["documents"] = {
            "mode": grounding.mode,
            "sources": [
                {key: source[key] for key in ("number", "document_id", "document_name", "page", "passage_id")}
                for source in grounding.sources
            ],
            "unread": grounding.unread,
        }
    return record
