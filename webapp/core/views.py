from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from webapp.core import metrics as parley_metrics
from webapp.core.health import check_ready, check_services


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "core/home.html")


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    healthy, report = check_services()
    return JsonResponse({"status": "ok" if healthy else "unavailable", **report}, status=200 if healthy else 503)


@login_not_required
@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 only when a user can be served now: the database migrated, Redis answering, a
    generation worker alive for the default model. /healthz stays the liveness probe."""
    ready, report = check_ready()
    return JsonResponse({"status": "ready" if ready else "not ready", **report}, status=200 if ready else 503)


def _may_scrape(request: HttpRequest) -> bool:
    token = settings.PARLEY_METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), token.encode()):
        return True
    return bool(request.user.is_authenticated and request.user.is_staff)


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format, for a scraper holding PARLEY_METRICS_TOKEN or for staff."""
    if not _may_scrape(request):
        return HttpResponse(
            "Metrics are for staff, or for a scraper sending 'Authorization: Bearer <PARLEY_METRICS_TOKEN>'.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    return HttpResponse(parley_metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
