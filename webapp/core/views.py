from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from webapp.core.health import check_services


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "core/home.html")


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    healthy, report = check_services()
    return JsonResponse({"status": "ok" if healthy else "unavailable", **report}, status=200 if healthy else 503)
