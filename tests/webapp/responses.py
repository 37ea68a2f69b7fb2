"""The body of a streaming response as the test client hands it back, typed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import async_to_sync
from django.http import HttpResponseBase, StreamingHttpResponse


def streamed(response: HttpResponseBase) -> Iterator[bytes]:
    """The chunks of a view's streaming response, in order.

    The test client's responses are typed as plain responses whatever the view returned.
    A view whose body is an async iterator (so that it streams under ASGI) hands the WSGI
    test client that iterator; it is read here to the end, in the test's thread and so on
    its database connection.
    """
    assert isinstance(response, StreamingHttpResponse)
    content = response.streaming_content
    if isinstance(content, Iterator):
        return content
    assert isinstance(content, AsyncIterator)
    body = content

    async def chunks() -> list[bytes]:
        return [bytes(chunk) async for chunk in body]

    return iter(async_to_sync(chunks)())
