"""Document pages, and Cancel for any job. Each view looks its objects up scoped to the user."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_ratelimit.core import is_ratelimited

from webapp.accounts.http import AuthedRequest
from webapp.documents import quotas, selectors, services
from webapp.documents.forms import CollectionForm, SummaryForm
from webapp.documents.models import Collection, Document, Passage
from webapp.documents.summaries import SHOWN_FIRST
from webapp.jobs import selectors as jobs
from webapp.jobs.services import job_cancel

PAGE_SIZE = 25
PREVIEW_CHARACTERS = 20_000


@require_GET
def index(request: AuthedRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    page = Paginator(selectors.documents_for(request.user, query), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "query": query,
        "pending": any(d.status == Document.Status.PENDING for d in page),
        "max_files": settings.PARLEY_UPLOAD_MAX_FILES,
        "max_mb": f"{settings.PARLEY_UPLOAD_MAX_BYTES / (1024 * 1024):g}",
        "usage": quotas.storage_usage(owner_id=request.user.pk),
    }
    template = "documents/index.html#document_list" if request.htmx else "documents/index.html"
    return render(request, template, context)


@require_POST
def upload(request: AuthedRequest) -> HttpResponse:
    rate = settings.PARLEY_UPLOAD_RATE
    if is_ratelimited(request, group="documents-upload", key="user", rate=rate, method="POST", increment=True):
        messages.error(request, f"Too many uploads: at most {_per_period(rate)}. Wait a little, then try again.")
        return redirect("documents:index")
    outcome = services.documents_upload(
        request.user, request.FILES.getlist("files"), getattr(request, "oversized_uploads", [])
    )
    for document in outcome.added:
        messages.success(request, f"“{document.name}” uploaded; its text is being read.")
    for document in outcome.already_there:
        messages.info(request, f"“{document.name}” is already in your documents.")
    for name, why in outcome.refused:
        messages.error(request, f"“{name}”: {why}" if name else why)
    if not (outcome.added or outcome.already_there or outcome.refused):
        messages.error(request, "Choose one or more files to upload.")
    return redirect("documents:index")


_PERIODS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


def _per_period(rate: str) -> str:
    """``30/m`` as "30 a minute", ``100/15m`` as "100 every 15 minutes"."""
    count, period = rate.split("/")
    unit = _PERIODS[period[-1]]
    return f"{count} every {period[:-1]} {unit}s" if period[:-1] else f"{count} a {unit}"


def _detail_context(document: Document, passage: Passage | None = None) -> dict[str, object]:
    context: dict[str, object] = {
        "document": document,
        "preview": document.text[:PREVIEW_CHARACTERS],
        "summaries": selectors.summaries_for(document),
        "summary_form": SummaryForm(),
        "summary_shown_first": SHOWN_FIRST,
        "reading_job": selectors.reading_job_of(document) if document.status == Document.Status.PENDING else None,
    }
    if passage is not None:
        # The text around the passage, the passage itself marked, wherever in the document it is.
        start = max(0, passage.start - PREVIEW_CHARACTERS // 2)
        context |= {
            "passage": passage,
            "before": document.text[start : passage.start],
            "marked": document.text[passage.start : passage.end],
            "after": document.text[passage.end : passage.end + PREVIEW_CHARACTERS // 2],
            "cut_before": start > 0,
        }
    return context


@require_GET
def detail(request: AuthedRequest, document_id: int) -> HttpResponse:
    document = selectors.document_get(request.user, document_id)
    passage = selectors.passage_of(document, request.GET.get("passage"))
    template = "documents/detail.html#summaries" if request.htmx else "documents/detail.html"
    return render(request, template, _detail_context(document, passage))


@require_POST
def summarize(request: AuthedRequest, document_id: int) -> HttpResponse:
    document = selectors.document_get(request.user, document_id)
    form = SummaryForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "Pick a length (short, medium, long), a form (paragraph or bullet points) and a model offered here.",
        )
    else:
        try:
            services.summary_request(
                document, form.cleaned_data["length"], form.cleaned_data["form"], form.cleaned_data["model"]
            )
        except services.DocumentError as error:
            messages.error(request, str(error))
    return redirect("documents:detail", document.pk)


@require_POST
def cancel(request: AuthedRequest, job_id: int) -> HttpResponse:
    job = jobs.job_get(user=request.user, job_id=job_id)
    if not job_cancel(job=job):
        messages.info(request, "That job had already finished.")
    return redirect("documents:detail", job.document_id) if job.document_id else redirect("documents:index")


@require_GET
def download(request: AuthedRequest, document_id: int) -> HttpResponse:
    document = selectors.document_get(request.user, document_id)
    response = HttpResponse(bytes(document.original), content_type="application/octet-stream")
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(document.name, safe='')}"
    return response


@require_POST
def delete(request: AuthedRequest, document_id: int) -> HttpResponse:
    document = selectors.document_get(request.user, document_id)
    services.document_delete(document)
    messages.success(request, f"“{document.name}” deleted.")
    return redirect("documents:index")


# ---- collections ------------------------------------------------------------------------------


def _form_error(form: CollectionForm) -> str:
    return str(next(iter(form.errors.values()))[0])


@require_http_methods(["GET", "POST"])
def collections(request: AuthedRequest) -> HttpResponse:
    """The user's collections, and a new one made."""
    form = CollectionForm(request.POST or None, owner=request.user)
    error = ""
    if request.method == "POST":
        try:
            if not form.is_valid():
                raise services.DocumentError(_form_error(form))
            made = services.collection_create(
                owner=request.user, name=form.cleaned_data["name"], document_ids=form.cleaned_data["documents"]
            )
        except services.DocumentError as refused:
            error = str(refused)
        else:
            messages.success(request, f"Collection “{made}” made. Attach it to a chat like a document.")
            return redirect("documents:collections")
    context = {"collections": selectors.collections_for(request.user), "form": form, "error": error}
    return render(request, "documents/collections.html", context, status=422 if error else 200)


@require_http_methods(["GET", "POST"])
def collection(request: AuthedRequest, collection_id: int) -> HttpResponse:
    """One collection: renamed and its documents chosen."""
    chosen = selectors.collection_get(request.user, collection_id)
    if request.method == "POST":
        form = CollectionForm(request.POST, owner=request.user)
        try:
            if not form.is_valid():
                raise services.DocumentError(_form_error(form))
            services.collection_update(
                collection=chosen, name=form.cleaned_data["name"], document_ids=form.cleaned_data["documents"]
            )
        except services.DocumentError as refused:
            chosen.refresh_from_db()
            return _collection_page(request, chosen, form, error=str(refused))
        messages.success(request, f"Collection “{chosen}” saved.")
        return redirect("documents:collection", chosen.pk)
    initial = {"name": chosen.name, "documents": list(chosen.documents.values_list("pk", flat=True))}
    return _collection_page(request, chosen, CollectionForm(owner=request.user, initial=initial))


def _collection_page(request: AuthedRequest, chosen: Collection, form: CollectionForm, error: str = "") -> HttpResponse:
    context = {"collection": chosen, "form": form, "error": error}
    return render(request, "documents/collection.html", context, status=422 if error else 200)


@require_POST
def collection_delete(request: AuthedRequest, collection_id: int) -> HttpResponse:
    chosen = selectors.collection_get(request.user, collection_id)
    services.collection_delete(collection=chosen)
    messages.success(request, f"Collection “{chosen}” deleted; its documents are kept.")
    return redirect("documents:collections")
