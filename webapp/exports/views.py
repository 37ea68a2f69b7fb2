"""The archive of everything a user owns, as one download."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from webapp.accounts.http import AuthedRequest
from webapp.exports.archive import user_archive


@require_GET
def everything(request: AuthedRequest) -> StreamingHttpResponse:
    pieces = user_archive(user=request.user)
    # Under ASGI, Django would turn a plain generator into a list before sending the first
    # byte: the whole zip in memory. Handing it one piece at a time keeps it streaming.
    content = one_at_a_time(pieces) if isinstance(request, ASGIRequest) else pieces
    response = StreamingHttpResponse(content, content_type="application/zip")
    filename = f"parley-{timezone.localdate():%Y-%m-%d}.zip"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    add_never_cache_headers(response)
    return response


async def one_at_a_time(pieces: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """Each piece of ``pieces``, produced in the request's own thread (thread-sensitive),
    where its database connection and cursors live; closed early if the client goes."""
    take = sync_to_async(lambda: next(pieces, None))
    try:
        while (piece := await take()) is not None:
            yield piece
    finally:
        await sync_to_async(pieces.close)()
