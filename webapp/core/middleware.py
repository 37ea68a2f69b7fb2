"""Middleware of Parley's own."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_only_middleware


@sync_only_middleware
class OneThreadPerRequest:
    """Does nothing to a request; it is here for where Django runs the others.

    Under ASGI, Django runs a middleware that can be async on the event loop, and every
    ``MiddlewareMixin`` one (sessions, CSRF, authentication, ...) then hands each of its
    hooks to a thread and back: about twenty crossings per request, each waiting for the
    event loop, which the other requests and the websockets share. Listed last and
    sync-only, this one makes every middleware above it run synchronously, so a request's
    whole chain runs in its own thread with one crossing in and one out.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)
