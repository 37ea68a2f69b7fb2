"""Sentiment batch pages: start one, pick a CSV's text column, read and export the results.

Each view looks its batch up scoped to the user, calls one service or selector and
renders; the labels on the page are the batch's own.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from webapp.accounts.http import AuthedRequest
from webapp.documents.intake import RejectedUpload
from webapp.sentiment import exports, selectors, services
from webapp.sentiment.charts import label_bars

ITEMS_PER_PAGE = 50


@require_GET
def index(request: AuthedRequest) -> HttpResponse:
    return render(request, "sentiment/index.html", {"batches": selectors.batches_for(request.user)[:100]})


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
    batch = selectors.batch_get(request.user, batch_id)
    if batch.job is None:  # a CSV waiting for its text column
        return render(request, "sentiment/column.html", {"batch": batch, "preview": selectors.batch_preview(batch)})
    labels = batch.shown_labels
    label = request.GET.get("label", "")
    label = label if label in labels else ""
    below = _percent(request.GET.get("below", ""))
    items = selectors.batch_items(batch, label=label, below=below / 100 if below is not None else None)
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    counts = selectors.batch_counts(batch)
    context = {
        "batch": batch,
        "job": batch.job,
        "counts": counts,
        "chart": label_bars(counts),
        "page": page,
        "label": label,
        "below": below,
        "labels": labels,
        "extra_columns": [c for c in batch.columns if c != batch.text_column],
    }
    template = "sentiment/batch.html#results" if request.htmx else "sentiment/batch.html"
    return render(request, template, context)


def _percent(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 <= int(value) <= 100 else None


@require_POST
def choose_column(request: AuthedRequest, batch_id: int) -> HttpResponse:
    batch = selectors.batch_get(request.user, batch_id)
    try:
        services.batch_choose_column(batch, request.POST.get("column", ""))
    except services.BatchError as error:
        messages.error(request, str(error))
    return redirect("sentiment:batch", batch.pk)


@require_GET
def export(request: AuthedRequest, batch_id: int, fmt: str) -> StreamingHttpResponse:
    if fmt not in exports.FORMATS:
        raise Http404("Exports are CSV or JSONL.")
    batch = exports.export_batch_get(request.user, batch_id)
    response = StreamingHttpResponse(exports.export_body(batch, fmt), content_type=exports.FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{exports.export_filename(batch, fmt)}"'
    return response
