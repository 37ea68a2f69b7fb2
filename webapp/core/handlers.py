"""The ASGI handler of Parley's pages."""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class ThreadedASGIHandler(ASGIHandler):
    """Django's ASGI handler, running each request's middleware and view in one thread,
    at most ``PARLEY_WEB_THREADS`` requests at a time, the others waiting in arrival order.

    Every middleware and view here is synchronous. Django's own handler builds its chain
    for the event loop all the same: it runs each ``MiddlewareMixin`` hook from the loop
    in a thread and back, and even with every middleware sync it still resolves the URL
    on the loop and sends the view to a thread: several crossings per request, each
    waiting for the event loop that the other requests and every websocket share. This
    one builds the synchronous chain, as under WSGI, and crosses once: into the request's
    thread with the request, back with the response. (Streaming and file responses are
    sent as Django sends them.)

    Why a limit: one process runs Python on one core at a time. Eight requests let in
    together share it, so each takes about eight times as long and all finish near the
    end; taken a couple at a time (enough to overlap one's database round trips with
    another's Python), the first are answered at once and the median sooner. Eight users
    pressing Regenerate together: see ``bench/chat_burst.py``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._turns: asyncio.Semaphore | None = None  # made on the serving event loop

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if self._turns is None:
            self._turns = asyncio.Semaphore(settings.PARLEY_WEB_THREADS)
        async with self._turns:  # asyncio's semaphore lets waiters in first come, first served
            response: HttpResponseBase = await sync_to_async(self.get_response)(request)
        return response
