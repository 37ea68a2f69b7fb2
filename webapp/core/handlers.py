"""The ASGI handler of Parley's pages."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class ThreadedASGIHandler(ASGIHandler):
    """Django's ASGI handler, running each request's middleware and view in one thread.

    Every middleware and view here is synchronous. Django's own handler builds its chain
    for the event loop all the same: it runs each ``MiddlewareMixin`` hook from the loop
    in a thread and back, and even with every middleware sync it still resolves the URL
    on the loop and sends the view to a thread: several crossings per request, each
    waiting for the event loop that the other requests and every websocket share. This
    one builds the synchronous chain, as under WSGI, and crosses once: into the request's
    thread with the request, back with the response. (Streaming and file responses are
    sent as Django sends them.)

    Every request that arrives runs at once, sharing the process's one core, so a burst
    of sends all commit near its end. Letting in two at a time, first come first served,
    answers the burst sooner but brought the chat's first tokens later: the first sends
    woke the generation worker alone, and the rest waited for their prefill (figures in
    docs/decisions.md). Hence no limit here.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await sync_to_async(self.get_response)(request)
        return response
