"""The generation worker: claims queued answers from Postgres and streams them.

One process owns the chat model. Its main loop claims queued answers with
``FOR UPDATE SKIP LOCKED`` (so two workers never take the same one), woken by a
Postgres notification with polling as the fallback, and hands each to a thread that
feeds it through the engine's continuous batch, publishes every delta to the
conversation's group with a sequence number, and saves the growing text at least every
``save_interval`` seconds. Postgres is the truth; the channel layer is only the fast path.

A worker holds a Postgres advisory lock for as long as it lives. The reaper interrupts
answers marked as generating by a worker whose lock is free, which is to say dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from channels.layers import get_channel_layer
from django.db import connection, transaction

from inference.engine import Engine, GenerationRequest, Stream
from inference.errors import InferenceError
from webapp.chat import services
from webapp.chat.models import Message

logger = logging.getLogger(__name__)

FINAL_STATUS = {
    "stop": Message.Status.COMPLETE,
    "length": Message.Status.COMPLETE,
    "cancelled": Message.Status.INTERRUPTED,
    "error": Message.Status.FAILED,
}


class Publisher:
    """Sends channel-layer events from worker threads through one long-lived event loop."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="publisher", daemon=True)
        self._thread.start()

    def publish(self, group: str, event: dict[str, Any]) -> None:
        if self.layer is None:
            return
        future = asyncio.run_coroutine_threadsafe(self.layer.group_send(group, event), self.loop)
        try:
            future.result(timeout=5)
        except Exception:
            logger.warning("could not publish %s to %s", event["type"], group, exc_info=True)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


def reap(own_key: int | None = None) -> int:
    """Interrupt answers whose worker died, keeping their partial text. Returns how many."""
    keys = set(
        Message.objects.filter(status=Message.Status.GENERATING)
        .exclude(worker_key=None)
        .values_list("worker_key", flat=True)
        .distinct()
    )
    keys.discard(own_key)
    reaped = 0
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            (free,) = cursor.fetchone()
            if not free:
                continue  # that worker is alive
            try:
                rows = list(
                    Message.objects.filter(status=Message.Status.GENERATING, worker_key=key).select_related(
                        "conversation"
                    )
                )
                for message in rows:
                    if Message.objects.filter(pk=message.pk, status=Message.Status.GENERATING).update(
                        status=Message.Status.INTERRUPTED,
                        error="The generation worker stopped before this answer was finished.",
                    ):
                        reaped += 1
                        _publish_final(services.publish, message, Message.Status.INTERRUPTED)
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    if reaped:
        logger.warning("interrupted %d answers left by a stopped generation worker", reaped)
    return reaped


def _publish_final(send: Any, message: Message, status: str, **extra: Any) -> None:
    send(
        message.conversation.group_name,
        {
            "type": "chat.status",
            "message": message.pk,
            "status": status,
            "content": message.content,
            "seq": message.seq,
            **extra,
        },
    )


class GenerationWorker:
    def __init__(
        self,
        engine: Engine,
        *,
        capacity: int | None = None,
        poll_interval: float = 2.0,
        reap_interval: float = 30.0,
        save_interval: float = 0.25,
    ) -> None:
        self.engine = engine
        self.capacity = capacity or engine.max_batch_size
        self.poll_interval = poll_interval
        self.reap_interval = reap_interval
        self.save_interval = save_interval
        self.key = secrets.randbelow(2**62) + 1
        self.publisher = Publisher()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._streams: dict[int, Stream] = {}
        self._streams_lock = threading.Lock()
        self._in_flight = 0
        self._pool = ThreadPoolExecutor(max_workers=self.capacity, thread_name_prefix="answer")
        self._listener: psycopg.Connection[Any] | None = None

    # ---- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Take the liveness lock, listen for notifications and reap what a dead worker left."""
        # Django's own cursor class and adapters are not wanted on this raw connection.
        params = {
            key: value
            for key, value in connection.get_connection_params().items()
            if key not in ("cursor_factory", "context", "prepare_threshold")
        }
        self._listener = psycopg.connect(**params, autocommit=True)
        self._listener.execute("SELECT pg_advisory_lock(%s)", [self.key])
        self._listener.execute(f"LISTEN {services.NOTIFY_CHANNEL}")
        threading.Thread(target=self._listen, name="listener", daemon=True).start()
        reap(self.key)

    def run(self) -> None:
        """Serve until ``stopping`` is set; answers in progress are finished first."""
        self.start()
        logger.info("generation worker %x ready with %s (batch %d)", self.key, self.engine.model_name, self.capacity)
        next_reap = time.monotonic() + self.reap_interval
        try:
            while not self.stopping.is_set():
                self.wake.clear()
                claimed = self.claim()
                if time.monotonic() >= next_reap:
                    reap(self.key)
                    self._poll_stop_requests()
                    next_reap = time.monotonic() + self.reap_interval
                if self.saturated:
                    self._publish_queue_positions()
                if not claimed:
                    self.wake.wait(self.poll_interval)
        finally:
            self.close()
            connection.close()

    def stop(self) -> None:
        """Claim nothing more and interrupt the answers in progress, keeping their text."""
        self.stopping.set()
        with self._streams_lock:
            held = list(self._streams)
        for message_id in held:
            self._cancel(message_id)
        self.wake.set()

    def close(self) -> None:
        self.stopping.set()
        self._pool.shutdown(wait=True)
        self.publisher.close()
        if self._listener is not None:
            self._listener.close()  # releases the liveness lock
            self._listener = None

    @property
    def saturated(self) -> bool:
        return self._in_flight >= self.capacity

    # ---- claiming ----------------------------------------------------------------------

    def claim(self) -> list[int]:
        """Take up to the free capacity of queued answers, oldest first, and start them."""
        free = self.capacity - self._in_flight
        if free <= 0:
            return []
        with transaction.atomic():
            ids = list(
                Message.objects.select_for_update(skip_locked=True)
                .filter(status=Message.Status.QUEUED, role=Message.Role.ASSISTANT)
                .order_by("created_at", "pk")
                .values_list("pk", flat=True)[:free]
            )
            if ids:
                Message.objects.filter(pk__in=ids).update(
                    status=Message.Status.GENERATING, worker_key=self.key, model_name=self.engine.model_name
                )
        for message_id in ids:
            with self._streams_lock:
                self._in_flight += 1
            self._pool.submit(self._serve_safely, message_id)
        return ids

    def _listen(self) -> None:
        assert self._listener is not None
        try:
            while not self.stopping.is_set():
                for notify in self._listener.notifies(timeout=1.0):
                    kind, _, message_id = notify.payload.partition(":")
                    if kind == "queued":
                        self.wake.set()
                    elif kind == "stop" and message_id.isdigit():
                        self._cancel(int(message_id))
        except psycopg.Error:
            if not self.stopping.is_set():
                logger.exception("lost the notification connection; polling only")

    def _cancel(self, message_id: int) -> None:
        with self._streams_lock:
            stream = self._streams.get(message_id)
        if stream is not None and not stream.cancelled and not stream.finished:
            with contextlib.suppress(InferenceError):  # it finished in the meantime
                stream.cancel()

    def _poll_stop_requests(self) -> None:
        """The fallback for a stop whose notification was missed."""
        with self._streams_lock:
            held = list(self._streams)
        if held:
            for message_id in Message.objects.filter(pk__in=held, stop_requested=True).values_list("pk", flat=True):
                self._cancel(message_id)

    def _publish_queue_positions(self) -> None:
        waiting = Message.objects.filter(status=Message.Status.QUEUED, role=Message.Role.ASSISTANT).order_by(
            "created_at", "pk"
        )
        for position, (message_id, conversation_id) in enumerate(
            waiting.values_list("pk", "conversation_id")[:500], start=1
        ):
            self.publisher.publish(
                f"chat.conversation.{conversation_id}",
                {"type": "chat.queue", "message": message_id, "position": position},
            )

    # ---- one answer -----------------------------------------------------------------------

    def _serve_safely(self, message_id: int) -> None:
        try:
            self.serve(message_id)
        except Exception as error:
            logger.exception("answer %s failed", message_id)
            self._fail(message_id, f"The answer could not be generated ({type(error).__name__}).")
        finally:
            connection.close()  # one connection per answer; nothing is left open when the pool ends
            with self._streams_lock:
                self._in_flight -= 1
            self.wake.set()

    def serve(self, message_id: int) -> None:
        answer = Message.objects.select_related("conversation").get(pk=message_id)
        options = answer.settings
        request = GenerationRequest.of(
            services.context_for(answer),
            max_new_tokens=int(options.get("max_tokens", 512)),
            temperature=float(options.get("temperature", 0.7)),
            top_p=float(options.get("top_p", 0.95)),
        )
        try:
            stream = self.engine.submit(request)
        except InferenceError as error:
            self._fail(message_id, str(error))
            return
        with self._streams_lock:
            self._streams[message_id] = stream
        if Message.objects.filter(pk=message_id, stop_requested=True).exists():
            self._cancel(message_id)  # Stop pressed between the claim and now
        group = answer.conversation.group_name
        self.publisher.publish(
            group,
            {"type": "chat.status", "message": message_id, "status": "generating", "trimmed": stream.trimmed_messages},
        )
        text = ""
        seq = 0
        last_save = time.monotonic()
        try:
            for chunk in stream.chunks():
                text += chunk
                seq += 1
                self.publisher.publish(group, {"type": "chat.delta", "message": message_id, "seq": seq, "delta": chunk})
                if time.monotonic() - last_save >= self.save_interval:
                    Message.objects.filter(pk=message_id, status=Message.Status.GENERATING).update(
                        content=text, seq=seq
                    )
                    last_save = time.monotonic()
        finally:
            with self._streams_lock:
                self._streams.pop(message_id, None)
        stats = stream.stats
        assert stats is not None
        status = FINAL_STATUS[stats.finish_reason]
        reason = ""
        if status == Message.Status.FAILED:
            reason = f"The model failed while writing this answer: {stats.error or 'unknown error'}."
        updated = Message.objects.filter(pk=message_id, status=Message.Status.GENERATING).update(
            content=text,
            seq=seq,
            status=status,
            error=reason,
            prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens,
            time_to_first_token_ms=None if stats.time_to_first_token is None else stats.time_to_first_token * 1000,
            tokens_per_second=stats.tokens_per_second,
            trimmed_messages=stats.trimmed_messages,
        )
        if updated:
            answer.content, answer.seq = text, seq
            _publish_final(
                self.publisher.publish,
                answer,
                status,
                error=reason,
                completion_tokens=stats.completion_tokens,
                tokens_per_second=round(stats.tokens_per_second, 1),
            )

    def _fail(self, message_id: int, reason: str) -> None:
        message = Message.objects.select_related("conversation").filter(pk=message_id).first()
        if message is None:
            return
        if Message.objects.filter(pk=message_id, status__in=Message.IN_FLIGHT).update(
            status=Message.Status.FAILED, error=reason
        ):
            _publish_final(self.publisher.publish, message, Message.Status.FAILED, error=reason)
