"""Holds an account that must choose a new password on the password-change page."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse


class PasswordChangeRequiredMiddleware:
    """Every page but the password change itself, logging out and static files sends a user
    with ``must_change_password`` to the password-change page, which says why."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and getattr(user, "must_change_password", False):
            change = reverse("password_change")
            open_paths = (change, reverse("logout"), f"/{settings.STATIC_URL.lstrip('/')}")
            if not request.path.startswith(open_paths):
                return redirect(change)
        return self.get_response(request)
