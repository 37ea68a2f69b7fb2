"""A request's text on its way out: the ``Stream`` a caller reads, and the text it carries.

A ``Stream`` is filled by the engine's scheduler thread and read from any one other
thread, by iterating (blocking) or with ``drain()`` (never blocking). Its deltas join to
the whole answer; after the end, ``stats`` is set and nothing more comes. ``cancel()``
asks the scheduler to stop within one decoding step and is safe to call at any time up
to and after the end.

``Detokenizer`` turns a growing list of token ids into text without ever sending part
of a character (a byte-level token may end inside one) or any part of a stop string
(``StopMatcher`` holds back a tail that could still grow into one).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

from inference.errors import InvalidRequestError
from inference.types import GenerationResult, GenerationStats

_END = object()


class Stream:
    """The deltas of one request, in order; iterate it from any one thread.

    ``on_cancel`` wakes the scheduler so that it sees a cancel at once; ``place`` reports
    the stream's place in the queue (see ``queue_position``).
    """

    def __init__(
        self,
        request_id: int,
        prompt_tokens: int,
        trimmed: int,
        *,
        on_cancel: Callable[[], None],
        place: Callable[[Stream], int],
        wake: threading.Event | None = None,
    ) -> None:
        self.request_id = request_id
        self.prompt_tokens = prompt_tokens
        self.trimmed_messages = trimmed
        self._on_cancel = on_cancel
        self._place = place
        self._events: queue.Queue[object] = queue.Queue()
        self._cancel_lock = threading.Lock()
        self._cancelled = threading.Event()
        self._finished = threading.Event()
        self._wake = wake  # set at the first text and at the end (see Engine.submit)
        self.first_text_at: float | None = None  # time.time() of the first text, for tracing its way out
        self.stats: GenerationStats | None = None

    def __iter__(self) -> Iterator[str]:
        while True:
            event = self._events.get()
            if event is _END:
                return
            assert isinstance(event, str)
            yield event

    def drain(self) -> tuple[str, bool]:
        """Without waiting: every delta produced since the last call, joined, and whether
        the request has ended (after which ``stats`` is set and nothing more comes).

        One thread can serve many streams this way, polling them together, instead of
        one waiting thread per stream.
        """
        parts: list[str] = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                # every delta is queued before the request is marked finished
                return "".join(parts), self._finished.is_set()
            if event is _END:
                return "".join(parts), True
            assert isinstance(event, str)
            parts.append(event)

    def cancel(self) -> bool:
        """Stop generating within one decoding step; the text already yielded stands.

        Returns True when this call cancelled the request (the step under way may still
        end it another way), False when it had already finished: an answer can end on its
        own while a Stop is on its way, and there is then nothing to do.
        Cancelling a request that is still running a second time is a caller's mistake
        and raises InvalidRequestError.
        """
        with self._cancel_lock:
            if self._finished.is_set():
                return False
            if self._cancelled.is_set():
                raise InvalidRequestError(f"request {self.request_id} was already cancelled.")
            self._cancelled.set()
        self._on_cancel()
        return True

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def queue_position(self) -> int:
        """1-based place among requests waiting for a batch slot; 0 once generating."""
        return self._place(self)

    def result(self) -> GenerationResult:
        text = "".join(self)
        assert self.stats is not None
        return GenerationResult(text=text, stats=self.stats)

    # called by the scheduler thread
    def _emit(self, delta: str) -> None:
        if delta:
            self._events.put(delta)
            if self.first_text_at is None:
                self.first_text_at = time.time()
                if self._wake is not None:
                    self._wake.set()

    def _finish(self, stats: GenerationStats) -> None:
        self.stats = stats
        self._finished.set()
        self._events.put(_END)
        if self._wake is not None:
            self._wake.set()


class StopMatcher:
    """Finds stop strings in growing text without ever emitting part of one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)

    def cut(self, text: str, emitted: int) -> tuple[int, bool]:
        """Return how far text may be emitted, and whether a stop string was reached."""
        if not self.stops:
            return len(text), False
        search_from = max(0, emitted - max(len(s) for s in self.stops))
        found = [i for i in (text.find(s, search_from) for s in self.stops) if i >= 0]
        if found:
            return min(found), True
        # hold back a tail that could still grow into a stop string
        hold = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:size]):
                    hold = max(hold, size)
                    break
        return len(text) - hold, False


class Detokenizer:
    """The text of one answer's tokens, decoded a token at a time.

    Only the last few tokens are decoded at each step (from ``prefix_offset``), so the cost
    does not grow with the answer; new text is taken only when it does not end in U+FFFD,
    the mark of a character whose bytes have not all come yet.
    """

    def __init__(self, decode: Callable[..., str], stops: tuple[str, ...]) -> None:
        self._decode = decode  # the tokenizer's decode
        self._stop_matcher = StopMatcher(stops)
        self.prefix_offset = 0
        self.read_offset = 0
        self.text = ""
        self.emitted = 0  # characters of text already sent

    def add(self, token_ids: list[int]) -> tuple[str, bool]:
        """After a token was appended to ``token_ids``: the new text that may be sent, and
        whether a stop string was reached (the text then ends where it begins)."""
        before = self._decode(token_ids[self.prefix_offset : self.read_offset], skip_special_tokens=True)
        after = self._decode(token_ids[self.prefix_offset :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.text += after[len(before) :]
            self.prefix_offset = self.read_offset
            self.read_offset = len(token_ids)
        upto, stopped = self._stop_matcher.cut(self.text, self.emitted)
        delta = ""
        if upto > self.emitted:
            delta = self.text[self.emitted : upto]
            self.emitted = upto
        if stopped:
            self.text = self.text[:upto]
        return delta, stopped

    def flush(self) -> str:
        """At the end: held-back text that did not become a stop string."""
        delta = self.text[self.emitted :]
        self.emitted = len(self.text)
        return delta
