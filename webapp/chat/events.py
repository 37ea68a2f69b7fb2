"""The frames chat puts on the channel layer, the groups they go to, and how each is built.

Every frame a chat socket handles (``webapp/chat/consumers.py``, a method per frame type)
is a ``TypedDict`` here, made by the one constructor below it, and sent through
``webapp.core.events`` (``publish``, or the worker's ``ThreadPublisher``). A frame is only
the fast path: what it says is already in Postgres, or is about to be on commit.

Groups: every socket on a conversation joins its conversation group, and its session's
and its user's groups (``webapp/core/sockets.py``), which close it when either ends.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from webapp.core.sockets import SessionClosedEvent


def conversation_group(*, conversation_id: int) -> str:
    """The group every socket on this conversation listens to."""
    return f"chat.conversation.{conversation_id}"


class DeltaEvent(TypedDict):
    """The piece of an answer numbered ``seq`` (the pieces joined are its whole text)."""

    type: Literal["chat.delta"]
    message: int
    seq: int
    delta: str


class StatusEvent(TypedDict):
    """An answer started or ended. When it ended, ``content`` is its final text and ``seq``
    the number of the last piece that text includes."""

    type: Literal["chat.status"]
    message: int
    status: str
    trimmed: NotRequired[int]  # generating: the oldest messages left out to fit the model
    content: NotRequired[str]
    seq: NotRequired[int]
    error: NotRequired[str]
    completion_tokens: NotRequired[int]
    tokens_per_second: NotRequired[float]
    time_to_first_token_ms: NotRequired[float | None]


class CreatedEvent(TypedDict):
    """A new answer was queued in the conversation (another tab may want to show it)."""

    type: Literal["chat.created"]
    message: int


class QueueEvent(TypedDict):
    """A queued answer's 1-based place among all queued answers."""

    type: Literal["chat.queue"]
    message: int
    position: int


class TitleEvent(TypedDict):
    """The model titled the conversation (after its first answer)."""

    type: Literal["chat.title"]
    title: str


ChatEvent = DeltaEvent | StatusEvent | CreatedEvent | QueueEvent | TitleEvent | SessionClosedEvent


def delta(*, message_id: int, seq: int, piece: str) -> DeltaEvent:
    return {"type": "chat.delta", "message": message_id, "seq": seq, "delta": piece}


def generating(*, message_id: int, trimmed: int) -> StatusEvent:
    return {"type": "chat.status", "message": message_id, "status": "generating", "trimmed": trimmed}


def ended(*, message_id: int, status: str, content: str, seq: int, error: str | None = None) -> StatusEvent:
    """An answer's end; ``error`` is left out of the frame when None (not when empty)."""
    event: StatusEvent = {
        "type": "chat.status",
        "message": message_id,
        "status": status,
        "content": content,
        "seq": seq,
    }
    if error is not None:
        event["error"] = error
    return event


def finished(
    *,
    message_id: int,
    status: str,
    content: str,
    seq: int,
    error: str,
    completion_tokens: int,
    tokens_per_second: float,
    time_to_first_token_ms: float | None,
) -> StatusEvent:
    """The end of an answer the model wrote to its end, with what the page shows of its speed."""
    event = ended(message_id=message_id, status=status, content=content, seq=seq, error=error)
    event["completion_tokens"] = completion_tokens
    event["tokens_per_second"] = round(tokens_per_second, 1)
    event["time_to_first_token_ms"] = None if time_to_first_token_ms is None else round(time_to_first_token_ms, 1)
    return event


def created(*, message_id: int) -> CreatedEvent:
    return {"type": "chat.created", "message": message_id}


def queue(*, message_id: int, position: int) -> QueueEvent:
    return {"type": "chat.queue", "message": message_id, "position": position}


def titled(*, title: str) -> TitleEvent:
    return {"type": "chat.title", "title": title}
