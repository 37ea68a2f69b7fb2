"""Answers streamed from an OpenAI-compatible server, behind the engine's interface.

``UpstreamEngine`` is what a generation worker drives for an ``openai`` model of the
registry (inference/config.py), in place of the in-process ``Engine``: ``submit(request)``
returns the same ``Stream`` (streams.py), filled with the text deltas the server sends,
and ``stream.stats`` says how it ended; ``together()`` and ``close()`` are there too, so
the worker does not care which kind of model it serves.

One thread runs an asyncio loop with one ``httpx2.AsyncClient`` (the maintained
continuation of HTTPX, which the ``openai`` package also uses), and each request is a task
on it that POSTs ``/chat/completions`` with ``stream: true`` and reads the server-sent
events: many answers at once cost one thread, not one each.

- **Stop**: ``Stream.cancel()`` cancels the request's task; the response is closed at once
  (its connection dropped, which is how vLLM, llama.cpp and their peers learn to stop
  generating), and nothing received after the cancel is emitted: the text kept is the
  text streamed before it, within one received chunk.
- **Timeouts**: ``connect_timeout`` to open a connection, ``timeout`` for the response and
  then for each next chunk, so a server that goes quiet mid-answer ends it too.
- **Retries**: only before the first token, only of errors that say the request never
  reached a model: a connection refused or broken before the response
  (``ConnectError``, ``ConnectTimeout``, a ``RemoteProtocolError`` before any response)
  and HTTP 429, 502, 503 and 504; ``retries`` more attempts, waiting 0.5 s, 1 s, 2 s…
  (a 429's ``Retry-After`` when it says less than 30 s).
- **Faults**: a server that is down, too slow, answers with an error or closes the stream
  before its end finishes the stream with ``finish_reason="error"`` and a readable
  ``stats.error``; the text received so far stays in the stream.

The upstream trims nothing for us, so a conversation longer than the model's
``context_length`` leaves out its oldest turns here, as the local engine does, counting a
token as ``CHARS_PER_TOKEN`` characters: no tokenizer of the upstream's model is at hand,
and an estimate on the cautious side costs a few old turns, not a refusal.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx2

from inference import prompts
from inference.config import UpstreamModel
from inference.errors import InferenceError, InvalidRequestError
from inference.streams import Stream
from inference.types import ChatMessage, FinishReason, GenerationRequest, GenerationStats

logger = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
RETRY_FIRST_WAIT = 0.5  # seconds before the first retry; doubled for each next one
RETRY_AFTER_LIMIT = 30.0  # a longer Retry-After is not waited for
# Characters per token when fitting a conversation to an upstream's window: English runs
# about four a token in the common tokenizers, code and other languages fewer.
CHARS_PER_TOKEN = 3
# Tokens each message costs in a chat template besides its text (role markers).
TOKENS_PER_MESSAGE = 8
ERROR_TEXT_LIMIT = 300  # characters of an upstream's error message kept in a reason


class EstimatingTokenizer:
    """What cutting a document into chunks needs of a tokenizer (``summarize.chunk_text``),
    for an upstream model whose own tokenizer is not at hand: "tokens" of
    ``CHARS_PER_TOKEN`` characters, the same estimate that fits a conversation to the
    upstream's window, so a chunk never holds more than the model takes."""

    def __call__(
        self, text: str, *, add_special_tokens: bool = False, return_offsets_mapping: bool = False
    ) -> dict[str, list[Any]]:
        spans = [(start, min(start + CHARS_PER_TOKEN, len(text))) for start in range(0, len(text), CHARS_PER_TOKEN)]
        encoded: dict[str, list[Any]] = {"input_ids": list(range(len(spans)))}
        if return_offsets_mapping:
            encoded["offset_mapping"] = spans
        return encoded


class UpstreamFault(InferenceError):
    """The upstream could not give the answer; the message is the reason shown to users."""


class _Transient(UpstreamFault):
    """A fault worth another attempt before the first token (see the module docstring)."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


@dataclass
class _Answer:
    """What one request has received so far."""

    stream: Stream
    submitted_at: float
    chunks: int = 0  # content chunks, the completion's tokens when the server sends no usage
    first_token_at: float | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class UpstreamEngine:
    """Streams chat answers from one ``openai`` model of the registry."""

    def __init__(
        self,
        model: UpstreamModel,
        *,
        max_batch_size: int = 32,
        max_new_tokens_limit: int = 4096,
        retry_first_wait: float = RETRY_FIRST_WAIT,
    ) -> None:
        self.model = model
        # answers record which upstream model wrote them, under the name users chose it by
        self.model_name = f"{model.name} ({model.model})"
        self.max_batch_size = model.max_concurrency or max_batch_size
        self.max_context = model.context_length
        self.max_new_tokens_limit = min(max_new_tokens_limit, model.context_length // 2)
        self.retry_first_wait = retry_first_wait
        self._ids = itertools.count(1)
        self._tasks: dict[int, asyncio.Task[None]] = {}  # touched on the loop's thread only
        self._lock = threading.Lock()
        self._closed = False
        headers = {"Accept": "text/event-stream"}
        key = model.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"upstream {model.name}", daemon=True)
        self._thread.start()
        self._client = asyncio.run_coroutine_threadsafe(self._make_client(headers), self._loop).result()

    async def _make_client(self, headers: dict[str, str]) -> httpx2.AsyncClient:
        timeout = httpx2.Timeout(self.model.timeout, connect=self.model.connect_timeout)
        limits = httpx2.Limits(max_connections=self.max_batch_size, max_keepalive_connections=self.max_batch_size)
        return httpx2.AsyncClient(base_url=self.model.base_url, headers=headers, timeout=timeout, limits=limits)

    # ---- the engine's interface ------------------------------------------------------

    def count_text_tokens(self, text: str) -> int:
        """An estimate: no tokenizer of the upstream's model is at hand."""
        return len(text) // CHARS_PER_TOKEN + 1

    def submit(self, request: GenerationRequest, *, wake: threading.Event | None = None) -> Stream:
        """Validate the request and start streaming it; raises InvalidRequestError for a bad one."""
        prompts.validate(request, max_new_tokens_limit=self.max_new_tokens_limit)
        messages, trimmed = fit_to_window(request, context_length=self.model.context_length)
        request_id = next(self._ids)
        stream = Stream(
            request_id,
            estimated_tokens(messages),
            trimmed,
            on_cancel=lambda: self._cancel(request_id),
            place=lambda stream: 0,  # the worker sends no more than the upstream may take at once
            wake=wake,
        )
        answer = _Answer(stream=stream, submitted_at=time.perf_counter())
        body = self._body(request, messages)
        with self._lock:  # a request submitted before close() is started before it shuts down
            if self._closed:
                raise InferenceError("the engine is closed.")
            self._loop.call_soon_threadsafe(self._start, request_id, answer, body)
        return stream

    @contextmanager
    def together(self) -> Iterator[None]:
        """Requests go out as they come: the upstream batches them itself."""
        yield

    @property
    def active_count(self) -> int:
        return len(self._tasks)

    def close(self) -> None:
        """Stop every request (each ends as cancelled, its text kept), then the loop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()
        await self._loop.shutdown_asyncgens()  # the response streams' line readers

    # ---- one request -------------------------------------------------------------------

    def _body(self, request: GenerationRequest, messages: list[ChatMessage]) -> dict[str, Any]:
        params = request.params
        body: dict[str, Any] = {
            "model": self.model.model,
            "messages": [{"role": message.role, "content": message.content} for message in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    # Starting and cancelling both go through the loop's queue, in the order they were asked
    # for, so a Stop that follows a submit always finds its task.

    def _start(self, request_id: int, answer: _Answer, body: dict[str, Any]) -> None:
        task = self._loop.create_task(self._answer(answer, body))
        self._tasks[request_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(request_id, None))

    def _cancel(self, request_id: int) -> None:
        self._loop.call_soon_threadsafe(self._cancel_task, request_id)

    def _cancel_task(self, request_id: int) -> None:
        task = self._tasks.get(request_id)
        if task is not None:
            task.cancel()  # raised in the task at its next await; leaving the response closes it

    async def _answer(self, answer: _Answer, body: dict[str, Any]) -> None:
        """Stream one answer into its ``Stream``, whatever happens, and finish it."""
        try:
            attempt = 0
            while True:
                try:
                    await self._stream_once(answer, body)
                    break
                except _Transient as fault:
                    if answer.chunks or attempt >= self.model.retries:
                        raise
                    wait = fault.wait if fault.wait is not None else self.retry_first_wait * 2**attempt
                    logger.warning("%s: %s; trying again in %.1f s", self.model.name, fault, wait)
                    attempt += 1
                    await asyncio.sleep(wait)
        except asyncio.CancelledError:
            self._finish(answer, "cancelled")
        except UpstreamFault as fault:
            self._finish(answer, "error", str(fault))
        except Exception as error:  # the loop must outlive any one answer
            logger.exception("%s: streaming an answer failed", self.model.name)
            self._finish(answer, "error", f"{type(error).__name__}: {error}")
        else:
            if answer.stream.cancelled:
                self._finish(answer, "cancelled")
            elif answer.finish_reason is None:
                self._finish(answer, "error", f"{self._server} closed the stream before the answer was finished")
            else:
                self._finish(answer, "length" if answer.finish_reason == "length" else "stop")

    async def _stream_once(self, answer: _Answer, body: dict[str, Any]) -> None:
        try:
            async with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _status_fault(response, self._server)
                async for line in response.aiter_lines():
                    if answer.stream.cancelled:
                        return  # Stop was pressed: leaving the block closes the response
                    if self._take(answer, line):
                        return
        except httpx2.ConnectTimeout:
            seconds = self.model.connect_timeout
            raise _Transient(f"{self._server} did not accept a connection within {seconds:g} s") from None
        except httpx2.ConnectError as error:
            raise _Transient(f"{self._server} could not be reached ({_cause(error)})") from None
        except httpx2.RemoteProtocolError as error:
            if answer.chunks == 0 and answer.finish_reason is None:
                raise _Transient(f"{self._server} closed the connection ({_cause(error)})") from None
            raise UpstreamFault(f"{self._server} broke off the answer ({_cause(error)})") from None
        except httpx2.ReadTimeout:
            waited = "the first token" if answer.chunks == 0 else "the next token"
            raise UpstreamFault(
                f"{self._server} sent nothing for {self.model.timeout:g} s while Parley waited for {waited}"
            ) from None
        except httpx2.TransportError as error:
            raise UpstreamFault(f"the connection to {self._server} failed ({_cause(error)})") from None

    def _take(self, answer: _Answer, line: str) -> bool:
        """One line of the event stream; True at its end (``data: [DONE]``)."""
        if not line.startswith("data:"):
            return False  # blank lines between events, comments (":"), event names
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return True
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            raise UpstreamFault(f"{self._server} sent an event that is not JSON: {data[:80]!r}") from None
        if not isinstance(event, dict):
            raise UpstreamFault(f"{self._server} sent an event that is not an object: {data[:80]!r}")
        if "error" in event:
            raise UpstreamFault(f"{self._server} failed mid-answer: {_error_message(event)}")
        usage = event.get("usage")
        if isinstance(usage, dict):
            answer.prompt_tokens = usage.get("prompt_tokens", answer.prompt_tokens)
            answer.completion_tokens = usage.get("completion_tokens", answer.completion_tokens)
        for choice in event.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                if answer.first_token_at is None:
                    answer.first_token_at = time.perf_counter()
                answer.chunks += 1
                answer.stream._emit(content)
            if choice.get("finish_reason"):
                answer.finish_reason = choice["finish_reason"]
        return False

    def _finish(self, answer: _Answer, reason: FinishReason, error: str | None = None) -> None:
        now = time.perf_counter()
        completion = answer.completion_tokens if answer.completion_tokens is not None else answer.chunks
        first = answer.first_token_at
        elapsed = now - first if first is not None else 0.0
        answer.stream._finish(
            GenerationStats(
                prompt_tokens=answer.prompt_tokens or answer.stream.prompt_tokens,
                completion_tokens=completion,
                time_to_first_token=None if first is None else first - answer.submitted_at,
                tokens_per_second=completion / elapsed if elapsed > 0 else 0.0,
                finish_reason=reason,
                trimmed_messages=answer.stream.trimmed_messages,
                error=error,
                decode_seconds=None if first is None else elapsed,
            )
        )

    @property
    def _server(self) -> str:
        return f"the model server at {self.model.base_url}"


def _status_fault(response: httpx2.Response, server: str) -> UpstreamFault:
    status = response.status_code
    message = f"{server} answered {status} {response.reason_phrase}".rstrip()
    try:
        detail = _error_message(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        detail = response.text.strip()[:ERROR_TEXT_LIMIT]
    if detail:
        message = f"{message}: {detail}"
    if status not in TRANSIENT_STATUSES:
        return UpstreamFault(message)
    wait = None
    retry_after = response.headers.get("Retry-After", "")
    if retry_after.replace(".", "", 1).isdigit() and float(retry_after) <= RETRY_AFTER_LIMIT:
        wait = float(retry_after)
    return _Transient(message, wait)


def _error_message(document: Any) -> str:
    """The message of an OpenAI-shaped error (``{"error": {"message": …}}``), or the document."""
    error = document.get("error", document) if isinstance(document, dict) else document
    if isinstance(error, dict):
        error = error.get("message") or error
    return str(error)[:ERROR_TEXT_LIMIT]


def _cause(error: Exception) -> str:
    return str(error) or type(error).__name__


def estimated_tokens(messages: list[ChatMessage]) -> int:
    return sum(len(message.content) // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE for message in messages)


def fit_to_window(request: GenerationRequest, *, context_length: int) -> tuple[list[ChatMessage], int]:
    """The messages to send, leaving out the oldest turns when the conversation would not fit
    ``context_length`` with room for the answer (the system prompt and the last message are
    kept, and what is kept starts at a user message), and how many were left out."""
    budget = context_length - request.params.max_new_tokens
    messages = list(request.messages)
    system = [m for m in messages[:1] if m.role == "system"]
    turns = messages[len(system) :]
    if estimated_tokens(system + turns) <= budget:
        return system + turns, 0
    used = estimated_tokens(system)
    start = len(turns)
    for index in range(len(turns) - 1, -1, -1):
        used += estimated_tokens(turns[index : index + 1])
        if used > budget:
            break
        if turns[index].role == "user":
            start = index
    if start == len(turns):
        raise InvalidRequestError(
            f"the last message with the system prompt is about {estimated_tokens(system + turns[-1:]):,} tokens; "
            f"the model's window leaves {budget:,} for it with max_new_tokens={request.params.max_new_tokens}."
        )
    return system + turns[start:], start
