"""An answer's lifecycle: the one place that changes ``Message.status``.

::

    answer_enqueue ──> queued ──answer_claim──> generating ──answer_grow (text so far)
                         │                          │
                         │ answer_interrupt         ├─answer_finish──> complete / interrupted / failed
                         v                          ├─answer_fail────> failed
                    interrupted                     └─answer_reap────> interrupted (its worker died)
      queued ──answers_fail_unserved──> failed (its model left the registry)

    answers_import ──> complete / interrupted / failed (messages read from a file, already ended)

Each transition is one conditional UPDATE (``filter(pk=…, status=…).update(…)``), so a
transition that lost a race (Stop pressed as the answer ended, a reaper and a worker on
the same row) changes nothing, and its return value says whether it happened. Each
sends its own frame (``webapp/chat/events.py``) when its transaction commits, through
``send``: ``publish`` by default, the generation worker's ``ThreadPublisher`` from its
threads. Ending an answer and queueing it for review commit together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from webapp.accounts.usage import usage_record
from webapp.chat import events
from webapp.chat.imports import ImportedMessage
from webapp.chat.models import Conversation, Message
from webapp.chat.notify import notify_worker
from webapp.chat.selectors import queued_for
from webapp.core import metrics
from webapp.core.events import Event, publish
from webapp.core.locks import advisory_lock
from webapp.review import services as review

logger = logging.getLogger(__name__)

Send = Callable[[str, Event], None]

ENDED = (Message.Status.COMPLETE, Message.Status.INTERRUPTED, Message.Status.FAILED)
REAPED_ERROR = "The generation worker stopped before this answer was finished."


def _group(answer: Message) -> str:
    return events.conversation_group(conversation_id=answer.conversation_id)


def generation_settings(*, conversation: Conversation) -> dict[str, Any]:
    """What an answer records of its conversation's settings when it is queued: the model
    (its name in the registry, the installation's default when the conversation names
    none) decides which generation worker claims it."""
    return {
        "model": conversation.model or settings.PARLEY_INFERENCE.models.default,
        "temperature": conversation.temperature,
        "top_p": conversation.top_p,
        "max_tokens": conversation.max_tokens,
        "system_prompt": conversation.system_prompt,
    }


def answer_enqueue(*, conversation: Conversation, question_id: int, stop: Sequence[str] = ()) -> Message:
    """Queue an answer to ``question_id`` and show it as the end of the branch; ``stop``:
    strings that end it where they would begin (left out of its text).

    The caller holds the conversation's lock (``services``); the workers are woken and
    the conversation's sockets told when it commits.
    """
    recorded = generation_settings(conversation=conversation)
    if stop:
        recorded["stop"] = list(stop)
    answer = Message.objects.create(
        conversation=conversation,
        parent_id=question_id,
        role=Message.Role.ASSISTANT,
        status=Message.Status.QUEUED,
        settings=recorded,
    )
    conversation.current_leaf = answer
    conversation.save(update_fields=["current_leaf", "updated_at"])
    notify_worker(payload=f"queued:{answer.pk}")
    transaction.on_commit(partial(_announce_queued, answer))
    return answer


def _announce_queued(answer: Message) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        committed = time.time()
        queued = answer.created_at.timestamp()
        logger.debug("answer %d queued at %.3f, committed %.1f ms later", answer.pk, queued, (committed - queued) * 1e3)
    publish(_group(answer), events.created(message_id=answer.pk))


def answer_claim(*, worker_key: int, model: str, model_name: str, limit: int) -> list[Message]:
    """Take up to ``limit`` queued answers asked of ``model`` for the worker ``worker_key``,
    oldest first, recording ``model_name`` as the model writing them; they come with their
    conversations, read by the same query (one round trip fewer before the answer starts).

    ``SKIP LOCKED``: two workers claiming at once take different answers, and neither waits.
    """
    if limit <= 0:
        return []
    with transaction.atomic():
        claimed = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("conversation")
            .filter(queued_for(model=model))
            .order_by("created_at", "pk")[:limit]
        )
        if claimed:
            Message.objects.filter(pk__in=[answer.pk for answer in claimed], status=Message.Status.QUEUED).update(
                status=Message.Status.GENERATING, worker_key=worker_key, model_name=model_name
            )
            now = timezone.now()
            for answer in claimed:
                answer.status, answer.worker_key, answer.model_name = Message.Status.GENERATING, worker_key, model_name
            waits = [(now - answer.created_at).total_seconds() for answer in claimed]
            transaction.on_commit(partial(_count_waits, model=model, waits=waits))
    return claimed


def _count_waits(*, model: str, waits: list[float]) -> None:
    for wait in waits:
        metrics.QUEUE_TIME.labels(model=model).observe(wait)


def answer_grow(*, texts: Mapping[int, tuple[str, int]]) -> int:
    """Save the text so far (and the number of its last delta) of answers being written,
    ``{answer id: (text, seq)}``, in one statement; returns how many were saved.

    An answer stopped or reaped meanwhile is not among them: it keeps its final state.
    """
    if not texts:
        return 0
    grown = [Message(pk=pk, content=text, seq=seq) for pk, (text, seq) in texts.items()]
    return Message.objects.filter(status=Message.Status.GENERATING).bulk_update(grown, ["content", "seq"])


@dataclass(frozen=True)
class AnswerStatistics:
    """What the model reports of one answer it wrote."""

    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_ms: float | None
    tokens_per_second: float
    trimmed_messages: int
    finish_reason: str = "stop"  # why a complete answer ended: "stop" (the model ended it) or "length"
    cached_prompt_tokens: int | None = None  # from a local model's prefix cache; None for an upstream
    decode_seconds: float | None = None  # from the first token to the end


def answer_finish(
    *,
    answer: Message,
    status: str,
    content: str,
    seq: int,
    error: str,
    statistics: AnswerStatistics,
    send: Send = publish,
) -> bool:
    """End an answer the model stopped writing (``status``: complete, or interrupted after
    Stop, or failed midway with ``error``), with its whole text; False when it had already
    ended (reaped, or failed). A finished answer goes into the review queue in the same
    transaction."""
    if status not in ENDED:
        raise ValueError(f"{status!r} is not how an answer ends")
    with transaction.atomic():
        finished = bool(
            Message.objects.filter(pk=answer.pk, status=Message.Status.GENERATING).update(
                content=content,
                seq=seq,
                status=status,
                error=error,
                prompt_tokens=statistics.prompt_tokens,
                completion_tokens=statistics.completion_tokens,
                time_to_first_token_ms=statistics.time_to_first_token_ms,
                tokens_per_second=statistics.tokens_per_second,
                trimmed_messages=statistics.trimmed_messages,
            )
        )
        if finished:
            review.chat_answer_track(message_id=answer.pk)
            _count_usage(answer=answer, statistics=statistics)
            reasons = {
                str(Message.Status.COMPLETE): statistics.finish_reason,
                str(Message.Status.INTERRUPTED): "cancelled",
            }
            _count_ended(answer=answer, outcome=status, reason=reasons.get(status, "failed"), statistics=statistics)
            frame = events.finished(
                message_id=answer.pk,
                status=status,
                content=content,
                seq=seq,
                error=error,
                completion_tokens=statistics.completion_tokens,
                tokens_per_second=statistics.tokens_per_second,
                time_to_first_token_ms=statistics.time_to_first_token_ms,
            )
            transaction.on_commit(lambda: send(_group(answer), frame))
    if finished:
        answer.content, answer.seq, answer.status = content, seq, status
    return finished


def _count_usage(*, answer: Message, statistics: AnswerStatistics) -> None:
    """The tokens an ended answer took, on its user's usage for today: what the model read
    and wrote, whether the answer completed, was stopped or failed midway."""
    if not statistics.prompt_tokens and not statistics.completion_tokens:
        return
    usage_record(
        user_id=answer.conversation.owner_id,
        model=answer.asked_model,
        prompt_tokens=statistics.prompt_tokens,
        completion_tokens=statistics.completion_tokens,
    )


def _count_ended(*, answer: Message, outcome: str, reason: str, statistics: AnswerStatistics | None = None) -> None:
    """An ended answer on the operators' metrics, once its end is committed: ``reason`` is
    stop, length, cancelled or failed."""
    model = answer.asked_model
    queued_for = (timezone.now() - answer.created_at).total_seconds() if answer.created_at else None

    def count() -> None:
        metrics.ANSWERS.labels(model=model, outcome=outcome).inc()
        metrics.FINISHES.labels(model=model, reason=reason).inc()
        if queued_for is not None:
            metrics.ANSWER_DURATION.labels(model=model).observe(queued_for)
        if statistics is None:
            return
        metrics.PROMPT_TOKENS.labels(model=model).inc(statistics.prompt_tokens)
        metrics.GENERATED_TOKENS.labels(model=model).inc(statistics.completion_tokens)
        if statistics.time_to_first_token_ms is not None:
            metrics.TIME_TO_FIRST_TOKEN.labels(model=model).observe(statistics.time_to_first_token_ms / 1000)
        if statistics.decode_seconds is not None and statistics.completion_tokens > 1:
            gap = statistics.decode_seconds / (statistics.completion_tokens - 1)
            metrics.INTER_TOKEN_LATENCY.labels(model=model).observe(gap)
        if statistics.cached_prompt_tokens is not None:
            hit = statistics.cached_prompt_tokens
            metrics.PREFIX_CACHE_TOKENS.labels(model=model, result="hit").inc(hit)
            metrics.PREFIX_CACHE_TOKENS.labels(model=model, result="miss").inc(statistics.prompt_tokens - hit)

    transaction.on_commit(count)


def answer_fail(*, answer_id: int, reason: str, send: Send = publish) -> bool:
    """Mark an answer that could not be written (or not started) as failed, keeping any
    text saved; False when it had already ended or is gone."""
    answer = Message.objects.filter(pk=answer_id).first()
    if answer is None:
        return False
    failed = bool(
        Message.objects.filter(pk=answer_id, status__in=Message.IN_FLIGHT).update(
            status=Message.Status.FAILED, error=reason
        )
    )
    if failed:
        frame = events.ended(
            message_id=answer.pk, status=Message.Status.FAILED, content=answer.content, seq=answer.seq, error=reason
        )
        transaction.on_commit(lambda: send(_group(answer), frame))
        _count_ended(answer=answer, outcome=Message.Status.FAILED, reason="failed")
    return failed


def answer_interrupt(*, answer: Message) -> bool:
    """Stop an answer. One not yet claimed ends here, empty; one being written is asked to
    stop, and its worker cancels it within a step and ends it with the text shown; one
    whose worker is gone (no worker holds its lock) ends here with the text saved.
    False when it had already ended."""
    with transaction.atomic():
        if Message.objects.filter(pk=answer.pk, status=Message.Status.QUEUED).update(
            status=Message.Status.INTERRUPTED, stop_requested=True
        ):
            frame = events.ended(message_id=answer.pk, status=Message.Status.INTERRUPTED, content="", seq=0)
            transaction.on_commit(lambda: publish(_group(answer), frame))
            _count_ended(answer=answer, outcome=Message.Status.INTERRUPTED, reason="cancelled")
            return True
        if Message.objects.filter(pk=answer.pk, status=Message.Status.GENERATING).update(stop_requested=True):
            key = Message.objects.filter(pk=answer.pk).values_list("worker_key", flat=True).first()
            if key is not None:
                with advisory_lock(key) as free:
                    if free:  # its worker is gone: nobody else would end it
                        _interrupt_abandoned(key=key)
                        return True
            # delivered at commit; the worker also polls stop_requested, in case it is missed
            notify_worker(payload=f"stop:{answer.pk}")
            return True
    return False


UNSERVED_ERROR = "The model {model!r} this answer was asked of is no longer offered here."


def answers_fail_unserved(*, models: Sequence[str], send: Send = publish) -> int:
    """Fail queued answers asked of a model the registry no longer lists, which no worker
    would ever claim; returns how many."""
    unserved = (
        Message.objects.filter(status=Message.Status.QUEUED, role=Message.Role.ASSISTANT, settings__has_key="model")
        .exclude(settings__model__in=list(models))
        .values_list("pk", "settings")
    )
    failed = 0
    for answer_id, asked in unserved:
        failed += answer_fail(answer_id=answer_id, reason=UNSERVED_ERROR.format(model=asked.get("model")), send=send)
    return failed


def answer_reap(*, own_key: int | None = None, free_since: dict[int, float] | None = None, grace: float = 0.0) -> int:
    """Interrupt answers whose worker died, keeping their partial text. Returns how many.

    A worker holds its advisory lock for as long as it lives, so an answer marked with a
    key whose lock is free belongs to a dead worker. ``own_key`` is the caller's.

    A worker whose database connection dropped (Postgres restarted) has lost its lock
    until it reconnects, though it is alive and still writing. So a caller that reaps
    again and again (a worker) passes ``free_since``, its record of when it first found
    each key free, and a key is reaped only once it has stayed free for ``grace`` seconds:
    longer than a live worker takes to reconnect and take its lock again.
    """
    generating = Message.objects.filter(status=Message.Status.GENERATING).exclude(worker_key=None)
    keys = {key for key in generating.values_list("worker_key", flat=True).distinct() if key is not None}
    keys.discard(own_key)
    if free_since is not None:
        for gone in set(free_since) - keys:
            del free_since[gone]
    reaped = 0
    now = time.monotonic()
    for key in keys:
        with advisory_lock(key) as free:
            if not free:
                if free_since is not None:
                    free_since.pop(key, None)
                continue  # that worker is alive
            if free_since is not None and now - free_since.setdefault(key, now) < grace:
                continue  # perhaps reconnecting: look again later
            reaped += _interrupt_abandoned(key=key)
            if free_since is not None:
                free_since.pop(key, None)
    if reaped:
        logger.warning("interrupted %d answers left by a stopped generation worker", reaped)
    return reaped


def _interrupt_abandoned(*, key: int) -> int:
    """Interrupt the answers of the dead worker ``key``, keeping their text; how many."""
    interrupted = 0
    for answer in Message.objects.filter(status=Message.Status.GENERATING, worker_key=key):
        if Message.objects.filter(pk=answer.pk, status=Message.Status.GENERATING).update(
            status=Message.Status.INTERRUPTED, error=REAPED_ERROR
        ):
            interrupted += 1
            # its worker stopped, not its user: a failure to an operator
            _count_ended(answer=answer, outcome=Message.Status.INTERRUPTED, reason="failed")
            frame = events.ended(
                message_id=answer.pk, status=Message.Status.INTERRUPTED, content=answer.content, seq=answer.seq
            )
            transaction.on_commit(partial(publish, _group(answer), frame))
    return interrupted


IMPORT_BATCH_SIZE = 1000


def answers_import(*, conversation_ids: Sequence[int], messages: Sequence[ImportedMessage]) -> list[int]:
    """Create messages read from a file (``webapp/chat/imports.py``), questions and answers
    alike, each already ended; returns their ids, in the order given.

    ``message.conversation`` is a position in ``conversation_ids``, ``message.parent`` one
    in ``messages``. The ids are taken from the table's sequence first, so every parent is
    known before its row is written and the whole tree goes in a few statements however
    deep it is. Rows are created in the order given, so versions of a message keep their
    order. Nothing is queued, for a worker or for review: these answers were written
    elsewhere. The caller holds the transaction.
    """
    if not messages:
        return []
    for message in messages:
        if message.role == Message.Role.USER and message.status != Message.Status.COMPLETE:
            raise ValueError("an imported question is complete")
        if message.status not in ENDED:
            raise ValueError(f"{message.status!r} is not how an imported answer ends")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Message._meta.db_table, len(messages)],
        )
        ids = [row[0] for row in cursor.fetchall()]
    for start in range(0, len(messages), IMPORT_BATCH_SIZE):
        Message.objects.bulk_create(
            [
                Message(
                    pk=ids[position],
                    conversation_id=conversation_ids[message.conversation],
                    parent_id=None if message.parent is None else ids[message.parent],
                    role=message.role,
                    content=message.content,
                    status=message.status,
                    model_name=message.model_name,
                )
                for position, message in enumerate(messages[start : start + IMPORT_BATCH_SIZE], start=start)
            ]
        )
    return ids
