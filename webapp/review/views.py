"""Review pages: the queue, one item with its verdict form, the numbers and the export.

Only reviewers (staff, or the "reviewer" group) get past ``reviewer_required``; everyone
else is refused with 403 on every URL here, exports included.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from webapp.accounts.http import AuthedRequest
from webapp.core.streaming import streamed_body
from webapp.review import selectors, services
from webapp.review.charts import approval_by_day
from webapp.review.diffs import text_diff
from webapp.review.forms import QueueFilterForm, VerdictForm
from webapp.review.models import ReviewItem
from webapp.review.selectors import ItemView, QueueFilter

ITEMS_PER_PAGE = 50
View = Callable[..., HttpResponseBase]


def reviewer_required(view: View) -> View:
    @wraps(view)
    def guarded(request: AuthedRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not services.can_review(request.user):
            raise PermissionDenied("Only reviewers can open the review queue.")
        return view(request, *args, **kwargs)

    return guarded


def _queue_filter(request: AuthedRequest) -> tuple[QueueFilterForm, QueueFilter, str]:
    """The filter in the query string, and that query string to carry from page to page."""
    params = {name: request.GET[name] for name in QueueFilterForm.base_fields if request.GET.get(name)}
    form = QueueFilterForm(params)
    queue_filter = QueueFilter.from_cleaned(form.cleaned_data) if form.is_valid() else QueueFilter()
    return form, queue_filter, urlencode(params) if form.is_valid() else ""


def _with_query(url: str, query: str) -> str:
    return f"{url}?{query}" if query else url


@require_GET
@reviewer_required
def queue(request: AuthedRequest) -> HttpResponse:
    form, queue_filter, query = _queue_filter(request)
    items = selectors.queue(queue_filter).select_related("owner", "claimed_by", "message", "summary", "sentiment_item")
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    context = {
        "form": form,
        "page": page,
        "held_by_others": {item.pk for item in page if item.held_by_other(request.user, now)},
        "progress": selectors.progress(queue_filter),
        "model_names": selectors.model_names(),
        "datasets": selectors.DATASETS,
        "query": query,
    }
    return render(request, "review/queue.html", context)


@require_GET
@reviewer_required
def step(request: AuthedRequest) -> HttpResponseRedirect:
    """Go to the next (or previous) item of the filter, letting go of the one left behind."""
    _, queue_filter, query = _queue_filter(request)
    after = request.GET.get("after", "")
    forward = request.GET.get("direction", "next") != "previous"
    target: ReviewItem | None
    if after.isdigit() and (current := ReviewItem.objects.filter(pk=int(after)).first()) is not None:
        services.item_release(item_id=current.pk, reviewer=request.user)
        target = selectors.neighbour(item=current, queue_filter=queue_filter, reviewer=request.user, forward=forward)
    else:
        target = selectors.queue(queue_filter).filter(services.claimable_by(request.user, timezone.now())).first()
    if target is None and not forward and after.isdigit():
        messages.info(request, "There is no earlier item in this filter.")
        return HttpResponseRedirect(_with_query(reverse("review:item", args=[int(after)]), query))
    if target is None:
        messages.info(request, "Nothing left to review in this filter.")
        return HttpResponseRedirect(_with_query(reverse("review:queue"), query))
    return HttpResponseRedirect(_with_query(reverse("review:item", args=[target.pk]), query))


def _item_page(
    request: AuthedRequest,
    item: ReviewItem,
    form_and_view: tuple[VerdictForm, ItemView],
    *,
    status: int = 200,
    conflict: str = "",
) -> HttpResponse:
    _, queue_filter, query = _queue_filter(request)
    form, view = form_and_view
    verdicts = list(item.verdicts.select_related("reviewer"))
    context = {
        "item": item,
        "view": view,
        "form": form,
        "query": query,
        "progress": selectors.progress(queue_filter),
        "held_by_other": item.held_by_other(request.user, timezone.now()),
        "conflict": conflict,
        "history": [(v, text_diff(view.output, v.correction) if v.correction else None) for v in verdicts],
        "diff": text_diff(view.output, form["correction"].value() or view.output) if item.is_text else None,
    }
    return render(request, "review/item.html", context, status=status)


def _verdict_form(item: ReviewItem, data: Any = None) -> tuple[VerdictForm, ItemView]:
    view = selectors.item_view(item)
    latest = item.latest
    initial = {"version": item.version, "correction": view.output}
    if latest is not None:
        initial.update(
            decision=latest.decision,
            rating=latest.rating,
            tags=", ".join(latest.tags),
            comment=latest.comment,
            correction=latest.correction or view.output,
            corrected_label=latest.corrected_label,
        )
    return VerdictForm(data, item=item, original=view.output, initial=initial), view


@require_GET
@reviewer_required
def item(request: AuthedRequest, item_id: int) -> HttpResponse:
    services.item_claim(item_id=item_id, reviewer=request.user)  # claims nothing when there is no such item
    item = selectors.item_get(item_id)  # read after the claim, so the page shows who holds it
    return _item_page(request, item, _verdict_form(item))


@require_POST
@reviewer_required
def verdict(request: AuthedRequest, item_id: int) -> HttpResponse:
    item = selectors.item_get(item_id)
    form, view = _verdict_form(item, request.POST)
    if not form.is_valid():
        return _item_page(request, item, (form, view), status=422)
    try:
        saved = services.verdict_submit(
            item_id=item.pk, reviewer=request.user, seen_version=form.cleaned_data["version"], verdict=form.verdict()
        )
    except services.ReviewConflict as conflict:
        item = selectors.item_get(item_id)
        # The reviewer's input stays in the form, now against the current version, so
        # submitting again (having read the other verdict) replaces it deliberately.
        data = request.POST.copy()
        data["version"] = str(item.version)
        return _item_page(request, item, _verdict_form(item, data), status=409, conflict=str(conflict))
    messages.success(request, f"Saved: {saved.get_decision_display()} on {item}.")
    _, _, query = _queue_filter(request)
    step_query = urlencode({"after": item.pk}) + (f"&{query}" if query else "")
    return HttpResponseRedirect(f"{reverse('review:step')}?{step_query}")


@require_POST
@reviewer_required
def diff(request: AuthedRequest, item_id: int) -> HttpResponse:
    """The diff of the output against the correction being typed (an htmx partial)."""
    item = selectors.item_get(item_id)
    original = selectors.item_view(item).output
    correction = request.POST.get("correction", "")
    limit = settings.PARLEY_REVIEW_MAX_CORRECTION_CHARS
    if len(correction) > limit:
        context = {"item": item, "diff_error": f"A correction can be at most {limit:,} characters long."}
    else:
        context = {"item": item, "diff": text_diff(original, correction or original)}
    return render(request, "review/item.html#diff", context)


@require_GET
@reviewer_required
def stats(request: AuthedRequest) -> HttpResponse:
    numbers = selectors.stats()
    return render(request, "review/stats.html", {"stats": numbers, "chart": approval_by_day(numbers.by_day)})


@require_GET
@reviewer_required
def export(request: AuthedRequest) -> HttpResponseBase:
    form, queue_filter, _ = _queue_filter(request)
    if not form.is_valid():
        problems = " ".join(str(error) for errors in form.errors.values() for error in errors)
        return HttpResponseBadRequest(f"The filter is not valid: {problems}")
    dataset = request.GET.get("dataset", "reviews")
    if dataset not in selectors.DATASETS:
        return HttpResponseBadRequest(f"Unknown dataset {dataset!r}: choose one of {', '.join(selectors.DATASETS)}.")
    lines = streamed_body(selectors.export_lines(queue_filter, dataset))
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="parley-{dataset}-{stamp}.jsonl"'
    return response
