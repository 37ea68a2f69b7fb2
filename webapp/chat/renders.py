"""One render of an answer's text per update, shared by every socket of the process.

Every socket on a conversation receives the same deltas and so holds, at a given
sequence number, the same text; rendering it once per socket would multiply the cost by
the number of sockets (50 tabs on one streaming answer: 50 renders of the whole answer
for every piece). So a socket asks ``AnswerRenders.html`` for the answer's html at the
sequence number of the frame it sends, and the first to ask starts the render while the
others, asking meanwhile or after, await that same render.

A render is found by (answer id, sequence number) and used only when its text is the
asking socket's text (a comparison of two strings, far cheaper than a render): the
sanitizer's output depends on nothing else, so sharing it never shows a socket html of
a text it does not hold, whichever way that socket got there (streamed, a saved text
read on reconnect or to fill a gap, the final text). A socket only ever asks about an
answer of its own conversation, which it was allowed to open, so sharing crosses no
owner's line.

Renders of a long text run in a thread (``asyncio.to_thread``), never on the event loop,
and each records how long it took, which the sockets use to space their frames. A short
text (up to ``INLINE_CHARS``, an answer's first pieces) is rendered on the loop: that
takes well under a millisecond, where the way to a thread and back is two wake-ups, and on
a busy CPU each wake-up can wait tens of milliseconds for its turn (an answer's first
frame waited 50-60 ms so on the shared 2-core machine, docs/decisions.md). The renders kept
are the last ``KEPT`` asked for, in each event loop: enough for every answer streaming in
a process to keep its latest few, and a render pushed out is only done again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

from webapp.core.rendering import render_markdown

logger = logging.getLogger(__name__)

KEPT = 128
INLINE_CHARS = 256  # about 1 ms to render (2,000 characters take about 7 ms)


@dataclass(frozen=True)
class _Render:
    text: str
    done: asyncio.Task[tuple[str, float]]  # the html, and the seconds its render took in its thread


class AnswerRenders:
    """The renders of one event loop's sockets, by answer and sequence number."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._renders: OrderedDict[tuple[int, int], _Render] = OrderedDict()

    async def html(self, *, message_id: int, seq: int, text: str) -> tuple[str, float]:
        """The safe html of ``text``, answer ``message_id``'s text up to delta ``seq``, and
        the seconds its render took (as long as the render, whoever started it)."""
        key = (message_id, seq)
        render = self._renders.get(key)
        if render is None or render.text != text:
            render = _Render(text=text, done=asyncio.ensure_future(self._render(message_id, seq, text)))
            self._renders[key] = render
            while len(self._renders) > self.kept:
                self._renders.popitem(last=False)
        self._renders.move_to_end(key)
        # shielded: a socket that closes while it waits does not cancel the others' render
        try:
            return await asyncio.shield(render.done)
        except Exception:
            if self._renders.get(key) is render:
                del self._renders[key]  # asked again, it is tried again
            raise

    async def _render(self, message_id: int, seq: int, text: str) -> tuple[str, float]:
        if len(text) <= INLINE_CHARS:
            html, seconds = _timed_render(text)
        else:
            html, seconds = await asyncio.to_thread(_timed_render, text)
        logger.debug(
            "rendered answer %d at seq %d (%d characters) in %.1f ms", message_id, seq, len(text), seconds * 1e3
        )
        return html, seconds


def _timed_render(text: str) -> tuple[str, float]:
    started = time.perf_counter()
    html = render_markdown(text)
    return html, time.perf_counter() - started


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AnswerRenders] = weakref.WeakKeyDictionary()


def answer_renders() -> AnswerRenders:
    """The renders shared by the sockets of the running event loop (a process's sockets
    all run in one; futures cannot be awaited from another)."""
    loop = asyncio.get_running_loop()
    renders = _by_loop.get(loop)
    if renders is None:
        renders = _by_loop[loop] = AnswerRenders()
    return renders
