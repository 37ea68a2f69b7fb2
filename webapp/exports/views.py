"""The archive of everything a user owns, as one download."""

from __future__ import annotations

from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from webapp.accounts.http import AuthedRequest
from webapp.core.streaming import streamed_body
from webapp.exports.archive import user_archive


@require_GET
def everything(request: AuthedRequest) -> StreamingHttpResponse:
    pieces = user_archive(user=request.user)
    # Under ASGI, Django would turn a plain generator into a list before sending the first
    # byte: the whole zip in memory. Handing it one piece at a time keeps it streaming.
    content = streamed_body(pieces, pull_size=1) if isinstance(request, ASGIRequest) else pieces
    response = StreamingHttpResponse(content, content_type="application/zip")
    filename = f"parley-{timezone.localdate():%Y-%m-%d}.zip"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    add_never_cache_headers(response)
    return response
