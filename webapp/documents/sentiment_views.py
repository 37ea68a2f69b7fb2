"""Sentiment batch pages: start one, pick a CSV's text column, read and export the results."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from webapp.accounts.http import AuthedRequest
from webapp.documents import services
from webapp.documents.batches import EXTRA_KEY
from webapp.documents.charts import label_bars
from webapp.documents.intake import RejectedUpload
from webapp.documents.models import SentimentBatch, SentimentItem

ITEMS_PER_PAGE = 50
LABELS = ("negative", "neutral", "positive", "empty")


@require_GET
def index(request: AuthedRequest) -> HttpResponse:
    return render(request, "documents/sentiment_index.html", {"batches": services.batches_for(request.user)[:100]})


@require_POST
def create(request: AuthedRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    pasted = request.POST.get("texts", "")
    try:
        if getattr(request, "oversized_uploads", None):
            raise RejectedUpload("The file is larger than the upload limit.")
        if upload is not None:
            batch = services.batch_create(request.user, name=upload.name or "", data=upload.read())
        else:
            batch = services.batch_create(request.user, name="", data=pasted.encode(), pasted=True)
    except RejectedUpload as error:
        messages.error(request, str(error))
        return redirect("sentiment:index")
    return redirect("sentiment:batch", batch.pk)


@require_GET
def batch(request: AuthedRequest, batch_id: int) -> HttpResponse:
    batch = services.batch_get(request.user, batch_id)
    if batch.job is None:  # a CSV waiting for its text column
        return render(
            request, "documents/sentiment_column.html", {"batch": batch, "preview": services.batch_preview(batch)}
        )
    label = request.GET.get("label", "")
    label = label if label in LABELS else ""
    below = _percent(request.GET.get("below", ""))
    items = services.batch_items(batch, label=label, below=below / 100 if below is not None else None)
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    counts = services.batch_counts(batch)
    context = {
        "batch": batch,
        "job": batch.job,
        "counts": counts,
        "chart": label_bars(counts),
        "page": page,
        "label": label,
        "below": below,
        "labels": LABELS,
        "extra_columns": [c for c in batch.columns if c != batch.text_column],
    }
    template = "documents/sentiment_batch.html#results" if request.htmx else "documents/sentiment_batch.html"
    return render(request, template, context)


def _percent(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 <= int(value) <= 100 else None


@require_POST
def choose_column(request: AuthedRequest, batch_id: int) -> HttpResponse:
    batch = services.batch_get(request.user, batch_id)
    try:
        services.batch_choose_column(batch, request.POST.get("column", ""))
    except services.DocumentError as error:
        messages.error(request, str(error))
    return redirect("sentiment:batch", batch.pk)


@require_GET
def export(request: AuthedRequest, batch_id: int, fmt: str) -> StreamingHttpResponse:
    if fmt not in ("csv", "jsonl"):
        raise Http404("Exports are CSV or JSONL.")
    batch = services.batch_get(request.user, batch_id)
    items = batch.items.order_by("row").iterator(chunk_size=2000)
    extra = [c for c in batch.columns if c != batch.text_column]
    rows = _csv_lines(batch, items, extra) if fmt == "csv" else _jsonl_lines(items)
    response = StreamingHttpResponse(rows, content_type="text/csv" if fmt == "csv" else "application/x-ndjson")
    stem = batch.name.rsplit(".", 1)[0] or "batch"
    response["Content-Disposition"] = f'attachment; filename="{_ascii(stem)}-sentiment.{fmt}"'
    return response


def _csv_lines(batch: SentimentBatch, items: Iterator[SentimentItem], extra: list[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    text_name = batch.text_column or "text"
    writer.writerow(["row", *extra, text_name, "label", "confidence", "needs_review", "ragged_values"])
    for item in items:
        values = [item.extra.get(column, "") for column in extra]
        ragged = item.extra.get(EXTRA_KEY, "")
        writer.writerow([item.row, *values, item.text, item.label, _score(item), item.needs_review, ragged or ""])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _jsonl_lines(items: Iterator[SentimentItem]) -> Iterator[str]:
    for item in items:
        record = {
            "row": item.row,
            "text": item.text,
            "label": item.label,
            "confidence": item.score,
            "probabilities": item.probabilities,
            "needs_review": item.needs_review,
            "columns": item.extra,
        }
        yield json.dumps(record, ensure_ascii=False) + "\n"


def _score(item: SentimentItem) -> str:
    return "" if item.score is None else f"{item.score:.4f}"


def _ascii(name: str) -> str:
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in name)[:80] or "batch"
