"""Redirects stay on this site: a user-given target (``next``) is followed only when it is.

``safe_redirect_url`` is what a view that redirects to a URL from the request asks
first. ``SameSiteRedirectMiddleware`` holds every response to the same rule, so a view
that forgets to ask still cannot send a user to another site: a redirect (or an htmx
``HX-Redirect``) whose target is another host, or a scheme other than http(s), or plain
http from an https page, goes to the home page instead. Django's login and logout views
check their ``next`` the same way and fall back to ``LOGIN_REDIRECT_URL``, the home page.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

REDIRECT_HEADERS = ("Location", "HX-Redirect")


def is_same_site(request: HttpRequest, url: str | None) -> bool:
    return url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure())


def safe_redirect_url(request: HttpRequest, url: str | None, *, fallback: str | None = None) -> str:
    """``url`` when it leads to this site, else ``fallback`` (the home page when none is given)."""
    return url if url and is_same_site(request, url) else fallback or reverse("home")


class SameSiteRedirectMiddleware:
    """Every redirect a response asks for leads to this site, or to the home page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for header in REDIRECT_HEADERS:
            target = response.headers.get(header)
            if target and not is_same_site(request, target):
                response.headers[header] = reverse("home")
        return response
