"""The body of a streaming response as the test client hands it back, typed."""

from __future__ import annotations

from collections.abc import Iterator

from django.http import HttpResponseBase, StreamingHttpResponse


def streamed(response: HttpResponseBase) -> Iterator[bytes]:
    """The chunks of a view's streaming response, in order.

    The test client's responses are typed as plain responses whatever the view returned, and a
    streaming response's content may be an async iterator; a WSGI test client always gets a
    synchronous one.
    """
    assert isinstance(response, StreamingHttpResponse)
    content = response.streaming_content
    assert isinstance(content, Iterator)
    return content
