"""The generation worker: claims queued answers from Postgres and streams them.

One process serves one model of the registry (``settings.PARLEY_INFERENCE.models``)
through its backend (inference/backends.py): a local model's engine, which it owns, or an
upstream server's client; the loop below does not care which. Its main loop claims the
answers queued for its model with ``FOR UPDATE SKIP LOCKED`` (so two workers never take
the same one), woken by a Postgres notification with polling as the fallback, and submits
each to the backend (the local engine's continuous batch). One pump thread then serves
every live answer together: it takes what each stream has produced, publishes it to the
conversation's group as one delta with a sequence number, and saves the growing text of
all of them in one statement at least every ``save_interval`` seconds. (One thread for
all answers, not one per answer: on a CPU the model needs every core and every wake-up of
another Python thread slows it down.) Postgres is the truth; the channel layer is only the fast path.

An answer's first text and its end are published at once (the engine wakes the pump for
them). In between, each answer is published every ``flush_interval`` while few answers
stream, and less often as more do, so that together they send about
``updates_per_second`` deltas (each answer still at least every ``max_update_interval``).
Every delta wakes Redis, the web process and a browser, and on a CPU each wake-up is
taken from the model (figures in docs/decisions.md, "The worker's pump on a clock").

After a conversation's first answer is complete, the worker asks the same engine for the
conversation's title (``inference.prompts.title_request``): it joins the batch once the
answer has ended and been sent, so it never holds the answer up, and the pump saves it
when it ends, unless the user has renamed the conversation meanwhile (``services.
conversation_title_by_model``). Here rather than in a Celery task: this process owns the
chat model, and a short request in its batch costs a few decoding steps, where a task
would load a second copy of the model. A title that fails leaves the fallback title.

A worker holds a Postgres advisory lock for as long as it lives (``liveness.py``). The
reaper interrupts answers marked as generating by a worker whose lock has stayed free
for ``reap_grace`` seconds, which is to say dead.

The worker outlives its database: when Postgres restarts or drops a connection, the
main loop and the pump retry with backoff, and the notification connection reconnects,
takes the worker's locks again (well within ``reap_grace``, so no other worker reaps its
answers meanwhile) and looks for Stops sent while it was away. The engine keeps writing
meanwhile; the text is saved once the database answers again.

Every change of an answer's state (claiming, saving its growing text, finishing,
failing, reaping) is a call into ``webapp/chat/answers.py``, and every frame is built by
``webapp/chat/events.py``; this module only drives the engine and the pump.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection

from inference import prompts
from inference.backends import Backend
from inference.config import LocalModel
from inference.errors import InferenceError
from inference.streams import Stream
from inference.types import GenerationRequest
from webapp.accounts.usage import usage_record
from webapp.chat import answers, documents, events, liveness, selectors, services
from webapp.chat.models import Message
from webapp.chat.notify import worker_notifications
from webapp.core.events import ThreadPublisher

logger = logging.getLogger(__name__)

# Seconds a thread may hold the interpreter while another waits for it (Python's default is
# 0.005). In a worker the engine's thread computes nearly all the time, and the pump's and
# the publisher's threads each wait for their turn several times for every delta sent (a
# Redis round trip is three commands a group): at 5 ms a turn, 8 first texts took 40-285 ms
# to publish on the loaded 2-core machine. A shorter turn costs the engine's thread a few
# more switches a step, each microseconds.
INTERPRETER_SWITCH_INTERVAL = 0.001

FINAL_STATUS = {
    "stop": Message.Status.COMPLETE,
    "length": Message.Status.COMPLETE,
    "cancelled": Message.Status.INTERRUPTED,
    "error": Message.Status.FAILED,
}


@dataclass
class LiveAnswer:
    """An answer the engine is writing, as the pump thread keeps it."""

    message: Message
    stream: Stream
    text: str = ""
    seq: int = 0
    saved_seq: int = 0
    published_at: float = 0.0  # time.monotonic() of its last delta
    # time.time() when it was claimed and submitted, for the first text's path logged at DEBUG
    claimed_at: float = 0.0
    submitted_at: float = 0.0

    @property
    def group(self) -> str:
        return events.conversation_group(conversation_id=self.message.conversation_id)


@dataclass
class PendingTitle:
    """A conversation's title the engine is writing, after its first answer."""

    conversation_id: int
    owner_id: int
    model: str  # the registry's name its tokens are counted under
    stream: Stream
    text: str = ""


class GenerationWorker:
    def __init__(
        self,
        engine: Backend,
        *,
        model: str = "",
        capacity: int | None = None,
        poll_interval: float = 2.0,
        reap_interval: float = 30.0,
        reap_grace: float = 10.0,
        reconnect_delays: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0),
        save_interval: float = 0.25,
        flush_interval: float = 0.02,
        updates_per_second: float = 40.0,
        max_update_interval: float = 0.5,
    ) -> None:
        self.engine = engine
        # the registry's name of the model served: only answers asked of it are claimed
        self.model = model or settings.PARLEY_INFERENCE.models.default
        # only a local model's engine keeps a prefix cache whose hits are counted
        self.local = isinstance(settings.PARLEY_INFERENCE.models.get(self.model), LocalModel)
        self.capacity = capacity or engine.max_batch_size
        self.poll_interval = poll_interval
        self.reap_interval = reap_interval
        self.reap_grace = reap_grace
        self.reconnect_delays = reconnect_delays
        self._free_since: dict[int, float] = {}  # other workers' keys found free, and when
        self.save_interval = save_interval
        self.flush_interval = flush_interval
        self.updates_per_second = updates_per_second
        self.max_update_interval = max_update_interval
        self.key = secrets.randbelow(2**62) + 1
        self.publisher = ThreadPublisher()
        self.wake = threading.Event()
        self.pump_wake = threading.Event()  # an answer's first text or its end: publish now
        self.stopping = threading.Event()
        self._saved_at = 0.0
        self._answers: dict[int, LiveAnswer] = {}
        self._titles: list[PendingTitle] = []  # the pump thread's alone
        self._lock = threading.Lock()
        self._listener: psycopg.Connection[Any] | None = None
        self._notified_at = 0.0  # time.time() of the last "queued" notification (DEBUG's trace)
        self._pump = threading.Thread(target=self._pump_loop, name="pump", daemon=True)

    # ---- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Take the liveness locks and listen for notifications (the main loop then begins by
        looking for a dead worker's answers)."""
        sys.setswitchinterval(min(sys.getswitchinterval(), INTERPRETER_SWITCH_INTERVAL))
        self._listener = self._connect()
        threading.Thread(target=self._listen, name="listener", daemon=True).start()
        self._pump.start()

    def _connect(self) -> psycopg.Connection[Any]:
        listener = worker_notifications()
        liveness.hold(listener, key=self.key, model=self.model)
        return listener

    def reap(self) -> float:
        """Interrupt what dead workers left; returns the seconds until the next look (sooner
        while a key found free has yet to stay free for ``reap_grace``)."""
        answers.answer_reap(own_key=self.key, free_since=self._free_since, grace=self.reap_grace)
        # and fail what no worker would ever take: answers asked of a model no longer offered
        answers.answers_fail_unserved(models=settings.PARLEY_INFERENCE.models.names, send=self.publisher.publish)
        return min(self.reap_interval, self.reap_grace) if self._free_since else self.reap_interval

    def run(self) -> None:
        """Serve until ``stop()``; answers in progress end as interrupted, their text kept."""
        self.start()
        logger.info(
            "generation worker %x ready for %s with %s (batch %d)",
            self.key,
            self.model,
            self.engine.model_name,
            self.capacity,
        )
        next_reap = time.monotonic()
        failures = 0
        try:
            while not self.stopping.is_set():
                self.wake.clear()
                try:
                    claimed = self.claim()
                    if time.monotonic() >= next_reap:
                        next_reap = time.monotonic() + self.reap()
                        self._poll_stop_requests()
                    if self.saturated:
                        self._publish_queue_positions()
                except DatabaseError as error:
                    delay = self.reconnect_delays[min(failures, len(self.reconnect_delays) - 1)]
                    failures += 1
                    logger.warning("the database is unavailable (%s); trying again in %.1f s", error, delay)
                    connection.close()
                    self.stopping.wait(delay)
                    continue
                failures = 0
                if not claimed:
                    self.wake.wait(self.poll_interval)
        finally:
            self.close()
            connection.close()

    def stop(self) -> None:
        """Claim nothing more and interrupt the answers in progress, keeping their text."""
        self.stopping.set()
        with self._lock:
            held = list(self._answers)
        for message_id in held:
            self._cancel(message_id)
        self.wake.set()

    def close(self) -> None:
        self.stopping.set()
        if self._pump.is_alive():
            self._pump.join(timeout=60)
        self.publisher.close()
        if self._listener is not None:
            self._listener.close()  # releases the liveness lock
            self._listener = None

    @property
    def saturated(self) -> bool:
        return len(self._answers) >= self.capacity

    # ---- claiming ----------------------------------------------------------------------

    def claim(self) -> list[int]:
        """Take up to the free capacity of queued answers, oldest first, and start them."""
        claimed = answers.answer_claim(
            worker_key=self.key,
            model=self.model,
            model_name=self.engine.model_name,
            limit=self.capacity - len(self._answers),
        )
        if claimed:
            self.begin(claimed, claimed_at=time.time())
        return [answer.pk for answer in claimed]

    def begin(self, claimed: list[Message], *, claimed_at: float = 0.0) -> None:
        """Submit claimed answers to the engine; the pump thread takes it from there.

        Every prompt is built (their contexts read in one query) before any is submitted,
        and they are submitted in one ``together()`` block: answers claimed together share
        one prefill, and the model does not start on the first while the others are still
        being prepared.
        """
        requests: list[tuple[Message, GenerationRequest]] = []
        try:
            documents.answers_ground(
                answers=claimed, window_tokens=self.engine.max_context, count_tokens=self.engine.count_text_tokens
            )
            contexts = selectors.contexts_for(answers=claimed)
        except Exception as error:
            for answer in claimed:
                self._could_not_start(answer.pk, error)
            return
        for answer in claimed:
            try:
                requests.append((answer, self._request(answer, contexts[answer.pk])))
            except Exception as error:
                self._could_not_start(answer.pk, error)
        started: list[LiveAnswer] = []
        # refusals are recorded after the block: their writes need not hold back the others' prefill
        refused: list[tuple[int, Exception]] = []
        with self.engine.together():
            for answer, request in requests:
                try:
                    stream = self.engine.submit(request, wake=self.pump_wake)
                except Exception as error:
                    refused.append((answer.pk, error))
                    continue
                live = LiveAnswer(message=answer, stream=stream, claimed_at=claimed_at, submitted_at=time.time())
                with self._lock:
                    self._answers[answer.pk] = live
                started.append(live)
        for message_id, problem in refused:
            if isinstance(problem, InferenceError):
                self._fail(message_id, str(problem))
            else:
                self._could_not_start(message_id, problem)
        # Stop pressed between the claim and now
        for message_id in selectors.stop_requested_ids(message_ids=[live.message.pk for live in started]):
            self._cancel(message_id)
        self.publisher.publish_many(
            [
                (live.group, events.generating(message_id=live.message.pk, trimmed=live.stream.trimmed_messages))
                for live in started
            ]
        )

    def _could_not_start(self, message_id: int, error: Exception) -> None:
        logger.error("answer %s could not start", message_id, exc_info=error)
        self._fail(message_id, f"The answer could not be generated ({type(error).__name__}).")

    @staticmethod
    def _request(answer: Message, context: list[dict[str, str]]) -> GenerationRequest:
        options = answer.settings
        return GenerationRequest.of(
            context,
            # one user's chats start from their own kept prefixes, never from another user's
            cache_scope=f"user:{answer.conversation.owner_id}",
            max_new_tokens=int(options.get("max_tokens", 512)),
            temperature=float(options.get("temperature", 0.7)),
            top_p=float(options.get("top_p", 0.95)),
            stop=tuple(options.get("stop", ())),
        )

    def _listen(self) -> None:
        while not self.stopping.is_set():
            listener = self._listener
            try:
                if listener is None:
                    listener = self._reconnect()
                    if listener is None:
                        return  # stopping
                for notify in listener.notifies(timeout=1.0):
                    kind, _, message_id = notify.payload.partition(":")
                    if kind == "queued":
                        self._notified_at = time.time()
                        self.wake.set()
                    elif kind == "stop" and message_id.isdigit():
                        self._cancel(int(message_id))
            except psycopg.Error as error:
                if self.stopping.is_set():
                    return
                logger.warning("lost the notification connection (%s); reconnecting", error)
                if listener is not None:
                    with contextlib.suppress(psycopg.Error):
                        listener.close()
                self._listener = None

    def _reconnect(self) -> psycopg.Connection[Any] | None:
        """Connect again with backoff and take the liveness locks again; then claim and
        catch up on Stops that were sent while no notification could arrive."""
        for attempt in itertools.count():
            if self.stopping.is_set():
                return None
            try:
                self._listener = self._connect()
                break
            except psycopg.Error as error:
                delay = self.reconnect_delays[min(attempt, len(self.reconnect_delays) - 1)]
                logger.warning("cannot reach the database (%s); trying again in %.1f s", error, delay)
                self.stopping.wait(delay)
        logger.info("generation worker %x reconnected and holds its lock again", self.key)
        self.wake.set()
        try:
            self._poll_stop_requests()
        except DatabaseError:
            logger.warning("could not look for Stops after reconnecting; the main loop will")
        finally:
            connection.close()  # this thread's own Django connection
        return self._listener

    def _cancel(self, message_id: int) -> None:
        with self._lock:  # one cancel per answer, whichever thread asks
            live = self._answers.get(message_id)
            if live is not None and not live.stream.cancelled:
                live.stream.cancel()  # a no-op if it finished in the meantime

    def _poll_stop_requests(self) -> None:
        """The fallback for a stop whose notification was missed."""
        with self._lock:
            held = list(self._answers)
        if held:
            for message_id in selectors.stop_requested_ids(message_ids=held):
                self._cancel(message_id)

    def _publish_queue_positions(self) -> None:
        self.publisher.publish_many(
            [
                (
                    events.conversation_group(conversation_id=conversation_id),
                    events.queue(message_id=message_id, position=position),
                )
                for message_id, conversation_id, position in selectors.queue_positions(model=self.model)
            ]
        )

    # ---- the pump: every live answer, on one clock ------------------------------------------

    def _pump_loop(self) -> None:
        failures = 0
        try:
            while not (self.stopping.is_set() and not self._answers):
                self.pump_wake.wait(self.flush_interval)
                self.pump_wake.clear()
                try:
                    self.flush()
                    failures = 0
                except Exception as error:
                    delay = self.reconnect_delays[min(failures, len(self.reconnect_delays) - 1)]
                    failures += 1
                    if isinstance(error, DatabaseError):
                        logger.warning("cannot save answers (%s); trying again in %.1f s", error, delay)
                    else:
                        logger.exception("the pump failed a round; trying again in %.1f s", delay)
                    connection.close()
                    time.sleep(delay)  # the streams keep their text; nothing is lost by waiting
        finally:
            connection.close()

    def update_interval(self, live: int) -> float:
        """Seconds between two deltas of one answer while ``live`` answers stream."""
        return min(self.max_update_interval, max(self.flush_interval, live / self.updates_per_second))

    def flush(self) -> None:
        """Publish what the streams due for an update produced; save and finish answers."""
        with self._lock:
            live = list(self._answers.values())
        now = time.monotonic()
        interval = self.update_interval(len(live))
        deltas: list[tuple[str, events.DeltaEvent]] = []
        ended: list[LiveAnswer] = []
        firsts: list[tuple[LiveAnswer, float]] = []  # first texts and when they were drained
        for answer in live:
            if answer.seq and not answer.stream.finished and now - answer.published_at < interval:
                continue  # not due yet; a first text and an end never wait
            piece, done = answer.stream.drain()
            if piece and not answer.seq:
                firsts.append((answer, time.time()))
            if piece:
                answer.text += piece
                answer.seq += 1
                answer.published_at = now
                deltas.append((answer.group, events.delta(message_id=answer.message.pk, seq=answer.seq, piece=piece)))
            if done:
                ended.append(answer)
        self.publisher.publish_many(deltas)
        if firsts and logger.isEnabledFor(logging.DEBUG):
            published = time.time()
            for answer, drained in firsts:
                self._trace_first_text(answer, drained=drained, published=published)
        if now - self._saved_at >= self.save_interval:
            self._save([answer for answer in live if answer.seq != answer.saved_seq and answer not in ended])
            self._saved_at = now
        for answer in ended:
            self._finish(answer)
            with self._lock:
                del self._answers[answer.message.pk]
            self.wake.set()  # room for another claim
        self._save_titles()

    def _trace_first_text(self, answer: LiveAnswer, *, drained: float, published: float) -> None:
        """Where the time went between an answer's queueing (its row's ``created_at``, in the
        web process) and its first text leaving for the channel layer, at DEBUG."""
        queued = answer.message.created_at.timestamp()

        def after(moment: float | None) -> str:
            return "?" if not moment else f"+{(moment - queued) * 1000:.1f}"

        logger.debug(
            "answer %d first text published at %.3f, %.1f ms after it was queued at %.3f (ms after queued: "
            "notified %s, claimed %s, submitted %s, first text from the model %s, drained %s, published %s)",
            answer.message.pk,
            published,
            (published - queued) * 1000,
            queued,
            after(self._notified_at if self._notified_at >= queued else None),
            after(answer.claimed_at),
            after(answer.submitted_at),
            after(answer.stream.first_text_at),
            after(drained),
            after(published),
        )

    @staticmethod
    def _save(live: list[LiveAnswer]) -> None:
        """The text of every answer so far, in one statement; one that was stopped or
        reaped meanwhile keeps its final state."""
        if not live:
            return
        answers.answer_grow(texts={answer.message.pk: (answer.text, answer.seq) for answer in live})
        for answer in live:
            answer.saved_seq = answer.seq

    def _finish(self, answer: LiveAnswer) -> None:
        stats = answer.stream.stats
        assert stats is not None
        status = FINAL_STATUS[stats.finish_reason]
        reason = ""
        if status == Message.Status.FAILED:
            reason = f"The model failed while writing this answer: {stats.error or 'unknown error'}."
        ttft = stats.time_to_first_token
        finished = answers.answer_finish(
            answer=answer.message,
            status=status,
            content=answer.text,
            seq=answer.seq,
            error=reason,
            statistics=answers.AnswerStatistics(
                prompt_tokens=stats.prompt_tokens,
                completion_tokens=stats.completion_tokens,
                time_to_first_token_ms=None if ttft is None else ttft * 1000,
                tokens_per_second=stats.tokens_per_second,
                trimmed_messages=stats.trimmed_messages,
                finish_reason=stats.finish_reason,
                cached_prompt_tokens=stats.cached_prompt_tokens if self.local else None,
                decode_seconds=stats.decode_seconds,
            ),
            send=self.publisher.publish,
        )
        if finished and status == Message.Status.COMPLETE:
            self._title_after(answer.message)

    # ---- titles: after a first answer, in the same batch ----------------------------------------

    def _title_after(self, answer: Message) -> None:
        """Ask the engine for the conversation's title when this was its first answer.

        The answer has ended and been sent by now, so the title never holds it up; it joins
        the batch like any answer (a short greedy one), and the pump saves it when it ends.
        A failure here is logged and leaves the fallback title: it never touches the answer.
        """
        try:
            question = selectors.question_to_title(answer=answer)
            if question is None:
                return
            request = prompts.title_request(question=question, cache_scope=f"user:{answer.conversation.owner_id}")
            stream = self.engine.submit(request, wake=self.pump_wake)
        except Exception:
            logger.exception("no title for conversation %s", answer.conversation_id)
            return
        self._titles.append(
            PendingTitle(
                conversation_id=answer.conversation_id,
                owner_id=answer.conversation.owner_id,
                model=answer.asked_model,
                stream=stream,
            )
        )

    def _save_titles(self) -> None:
        """Save the titles that are written; one the user renamed meanwhile is dropped."""
        for pending in list(self._titles):
            piece, done = pending.stream.drain()
            pending.text += piece
            if not done:
                continue
            self._titles.remove(pending)
            stats = pending.stream.stats
            self._count_title_usage(pending)
            title = prompts.clean_title(pending.text)
            if stats is None or stats.finish_reason not in ("stop", "length") or title is None:
                logger.warning("the model gave conversation %s no usable title", pending.conversation_id)
                continue
            try:
                services.conversation_title_by_model(
                    conversation_id=pending.conversation_id, title=title, send=self.publisher.publish
                )
            except Exception:
                logger.exception("could not save the title of conversation %s", pending.conversation_id)

    @staticmethod
    def _count_title_usage(pending: PendingTitle) -> None:
        """A title's tokens on its owner's usage for the model that wrote it, whether or not
        the title is kept: the model read and wrote them either way. Not an answer."""
        stats = pending.stream.stats
        if stats is None or not (stats.prompt_tokens or stats.completion_tokens):
            return
        try:
            usage_record(
                user_id=pending.owner_id,
                model=pending.model,
                prompt_tokens=stats.prompt_tokens,
                completion_tokens=stats.completion_tokens,
                answers=0,
            )
        except Exception:
            logger.exception("could not count the title tokens of conversation %s", pending.conversation_id)

    def _fail(self, message_id: int, reason: str) -> None:
        answers.answer_fail(answer_id=message_id, reason=reason, send=self.publisher.publish)
