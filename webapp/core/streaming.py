"""Response bodies that stream under ASGI: an async iterator over a synchronous one, in pulls.

Django's ASGI handler reads a synchronous iterator whole (``sync_to_async(list)``) before
it sends the first byte, so a large export given one would sit in the web process's
memory. ``streamed_body`` hands ``StreamingHttpResponse`` an async iterator instead: each
pull runs the synchronous iterator (its ORM ``.iterator()`` reads included) in the
request's thread with ``sync_to_async`` until about ``pull_size`` characters (or bytes)
are ready, so the body leaves in pieces of that size and memory stays flat whatever the
export's length. Text exports pull ``PULL_CHARACTERS`` at a time; a body that makes its
own pieces of a useful size (the zip of everything) pulls one piece at a time
(``pull_size=1``), so each goes out as soon as it is made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import AnyStr

from asgiref.sync import sync_to_async

PULL_CHARACTERS = 64 * 1024  # of text per pull: one round trip to the thread, one send


async def streamed_body(pieces: Iterator[AnyStr], *, pull_size: int = PULL_CHARACTERS) -> AsyncIterator[AnyStr]:
    """The pieces, joined into about ``pull_size`` a time (a longer piece goes alone)."""

    def pull() -> AnyStr | None:
        batch: list[AnyStr] = []
        size = 0
        for piece in pieces:
            batch.append(piece)
            size += len(piece)
            if size >= pull_size:
                break
        return batch[0][:0].join(batch) if batch else None

    try:
        # thread-sensitive: every pull runs in the request's own thread, with its connection
        while (text := await sync_to_async(pull)()) is not None:
            if text:
                yield text
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:  # a client that went away: the generator's cursor is closed now
            await sync_to_async(close)()
