"""The request type of pages behind the login, for type-checked views."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from webapp.accounts.models import User


class AuthedRequest(HttpRequest):
    # LoginRequiredMiddleware lets only logged-in users through; HtmxMiddleware adds htmx.
    user: User
    htmx: HtmxDetails
