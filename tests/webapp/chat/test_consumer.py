"""The conversation websocket, through the real ASGI stack, Redis and a live worker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from tests.webapp.chat.conftest import Converse
from tests.webapp.sockets import ORIGIN, session_cookie, socket_to
from webapp.accounts.models import User
from webapp.chat.events import conversation_group
from webapp.chat.models import Conversation, Message
from webapp.chat.worker import GenerationWorker
from webapp.core.events import publish
from webapp.core.rendering import render_markdown

pytestmark = pytest.mark.django_db(transaction=True)

FINAL = {"complete", "interrupted", "failed"}


def communicator(conversation_id: int, session: str | None = None, origin: str = ORIGIN) -> WebsocketCommunicator:
    return socket_to(f"/ws/chat/{conversation_id}/", session, origin=origin)


class Reader:
    """Rebuilds answers from frames as the browser does, failing on any gap or repeat."""

    def __init__(self, socket: WebsocketCommunicator) -> None:
        self.socket = socket
        self.frames: list[dict[str, Any]] = []
        self.text: dict[int, str] = {}
        self.seq: dict[int, int] = {}
        self.status: dict[int, str] = {}
        self.final_html: dict[int, str] = {}

    async def next(self, timeout: float = 10) -> dict[str, Any]:
        frame = json.loads(await self.socket.receive_from(timeout=timeout))
        self.frames.append(frame)
        message = frame.get("message")
        if frame["type"] == "answer":
            self.text[message], self.seq[message] = frame["content"], frame["seq"]
            self.status[message] = frame["status"]
        elif frame["type"] == "delta":
            expected = self.seq.get(message, 0) + 1
            assert frame["from_seq"] == expected, f"gap or repeat: {frame['from_seq']} after {self.seq}"
            assert frame["seq"] >= frame["from_seq"]
            self.seq[message] = frame["seq"]
            self.text[message] = self.text.get(message, "") + frame["delta"]
        elif frame["type"] == "status":
            self.status[message] = frame["status"]
            if "html" in frame:  # the final text, rendered, with any piece not yet sent as a delta
                self.final_html[message] = frame["html"]
        return frame

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next(timeout=timeout)
                if predicate(frame):
                    return frame

    async def until_final(self, message_id: int) -> dict[str, Any]:
        return await self.until(lambda f: f["type"] == "status" and f["message"] == message_id and f["status"] in FINAL)


async def open_queued(user: User, converse: Converse) -> tuple[Conversation, Message, WebsocketCommunicator, Reader]:
    """A conversation with a queued answer, and a socket on it past the answer's first frame."""
    conversation, answer = await database_sync_to_async(converse)()
    socket = communicator(conversation.pk, await session_cookie(user))
    await socket.connect()
    reader = Reader(socket)
    await reader.next()
    return conversation, answer, socket, reader


async def saved(answer: Message) -> Message:
    await answer.arefresh_from_db()
    return answer


async def saved_once(answer: Message, predicate: Callable[[Message], bool], timeout: float = 15) -> Message:
    """The answer as saved, as soon as ``predicate`` holds of it."""
    async with asyncio.timeout(timeout):
        while not predicate(stored := await saved(answer)):
            await asyncio.sleep(0.02)
    return stored


async def test_a_full_answer_streams_and_is_saved(
    user: User, converse: Converse, start_worker: Callable[..., GenerationWorker], close_db: None
) -> None:
    conversation, answer = await database_sync_to_async(converse)(max_tokens=80)
    socket = communicator(conversation.pk, await session_cookie(user))
    connected, _ = await socket.connect()
    assert connected
    reader = Reader(socket)
    first = await reader.next()
    assert first == {**first, "type": "answer", "message": answer.pk, "status": "queued", "position": 1}
    await database_sync_to_async(start_worker)()
    final = await reader.until_final(answer.pk)
    assert final["status"] == "complete"
    stored = await saved(answer)
    assert reader.text[answer.pk] == stored.content
    assert stored.completion_tokens == 80
    deltas = [f for f in reader.frames if f["type"] == "delta"]
    assert len(deltas) > 3, "the answer should arrive in several pieces"
    assert "<" not in deltas[-1]["delta"] or "&lt;" in deltas[-1]["html"]
    await socket.disconnect()


async def test_reconnecting_mid_answer_replays_the_saved_text_then_continues(
    user: User, converse: Converse, start_worker: Callable[..., GenerationWorker], close_db: None
) -> None:
    conversation, answer = await database_sync_to_async(converse)(max_tokens=400)
    session = await session_cookie(user)
    await database_sync_to_async(start_worker)(step_seconds=0.02)
    first = communicator(conversation.pk, session)
    await first.connect()
    reader = Reader(first)
    await reader.until(lambda f: f["type"] == "delta" and f["seq"] >= 5)
    await first.disconnect()
    # deltas go by with nobody listening, until the saved text is past what the first socket saw
    await saved_once(answer, lambda stored: stored.seq > reader.seq[answer.pk])

    second = communicator(conversation.pk, session)
    await second.connect()
    again = Reader(second)
    replay = await again.next()
    assert replay["type"] == "answer"
    assert replay["status"] == "generating"
    assert replay["seq"] > reader.seq[answer.pk], "the saved text should include what was missed"
    assert replay["content"].startswith(reader.text[answer.pk])
    final = await again.until_final(answer.pk)
    assert final["status"] == "complete"
    stored = await saved(answer)
    assert again.text[answer.pk] == stored.content  # no gap, no repeat
    await second.disconnect()


async def test_two_sockets_on_one_conversation_see_the_same_answer(
    user: User, converse: Converse, start_worker: Callable[..., GenerationWorker], close_db: None
) -> None:
    conversation, answer = await database_sync_to_async(converse)(max_tokens=120)
    session = await session_cookie(user)
    sockets = [communicator(conversation.pk, session) for _ in range(2)]
    for socket in sockets:
        assert (await socket.connect())[0]
    readers = [Reader(socket) for socket in sockets]
    await database_sync_to_async(start_worker)()
    for reader in readers:
        await reader.until_final(answer.pk)
    stored = await saved(answer)
    # What each page shows in the end is the whole answer; the deltas before it are a
    # beginning of it (a socket may fold its last pieces into the final frame).
    assert readers[0].final_html[answer.pk] == readers[1].final_html[answer.pk] == render_markdown(stored.content)
    for reader in readers:
        assert stored.content.startswith(reader.text[answer.pk])
    for socket in sockets:
        await socket.disconnect()


async def test_stop_frame_stops_the_answer_and_keeps_the_text_shown(
    user: User, converse: Converse, start_worker: Callable[..., GenerationWorker], close_db: None
) -> None:
    conversation, answer = await database_sync_to_async(converse)(max_tokens=450)
    socket = communicator(conversation.pk, await session_cookie(user))
    await socket.connect()
    reader = Reader(socket)
    await database_sync_to_async(start_worker)(step_seconds=0.02)
    await reader.until(lambda f: f["type"] == "delta" and f["seq"] >= 3)
    await socket.send_json_to({"type": "stop", "message": answer.pk})
    final = await reader.until_final(answer.pk)
    assert final["status"] == "interrupted"
    stored = await saved(answer)
    assert stored.status == "interrupted"
    assert reader.text[answer.pk] == stored.content
    assert stored.completion_tokens is not None
    assert stored.completion_tokens < 450
    await socket.disconnect()


async def test_a_closed_socket_does_not_stop_the_answer(
    user: User, converse: Converse, start_worker: Callable[..., GenerationWorker], close_db: None
) -> None:
    conversation, answer = await database_sync_to_async(converse)(max_tokens=200)
    socket = communicator(conversation.pk, await session_cookie(user))
    await socket.connect()
    await database_sync_to_async(start_worker)()
    await Reader(socket).until(lambda f: f["type"] == "delta")
    await socket.disconnect()
    stored = await saved_once(answer, lambda stored: not stored.in_flight)
    assert stored.status == "complete"
    assert stored.completion_tokens == 200


async def refused(socket: WebsocketCommunicator) -> bool:
    connected, _ = await socket.connect()
    await socket.disconnect()  # as the server does after a refused handshake
    return not connected


async def test_anonymous_handshake_is_refused(converse: Converse, close_db: None) -> None:
    conversation, _ = await database_sync_to_async(converse)()
    assert await refused(communicator(conversation.pk))


async def test_foreign_origin_handshake_is_refused(user: User, converse: Converse, close_db: None) -> None:
    conversation, _ = await database_sync_to_async(converse)()
    assert await refused(communicator(conversation.pk, await session_cookie(user), origin="https://evil.example"))


async def test_another_users_conversation_is_refused(
    make_user: Callable[..., User], converse: Converse, close_db: None
) -> None:
    conversation, _ = await database_sync_to_async(converse)()
    intruder = await database_sync_to_async(make_user)()
    assert await refused(communicator(conversation.pk, await session_cookie(intruder)))
    assert await refused(communicator(999_999, await session_cookie(intruder)))


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("x" * 5000, "too large"),
        ("{not json", "not JSON"),
        (json.dumps({"type": "delete-everything"}), "Unknown frame"),
        (json.dumps(["stop"]), "Unknown frame"),
        (json.dumps({"type": "stop", "message": "12"}), "as a number"),
        (json.dumps({"type": "stop", "message": True}), "as a number"),
    ],
)
async def test_bad_frames_get_an_error_frame_and_change_nothing(
    user: User, converse: Converse, close_db: None, frame: str, error: str
) -> None:
    _, answer, socket, reader = await open_queued(user, converse)
    await socket.send_to(text_data=frame)
    reply = await reader.next()
    assert reply["type"] == "error"
    assert error in reply["error"]
    assert (await saved(answer)).status == "queued"
    await socket.disconnect()


async def test_stopping_another_users_answer_is_refused(
    user: User, make_user: Callable[..., User], converse: Converse, close_db: None
) -> None:
    conversation, _ = await database_sync_to_async(converse)()
    other_user = await database_sync_to_async(make_user)()
    _, foreign_answer = await database_sync_to_async(converse)(owner=other_user)
    socket = communicator(conversation.pk, await session_cookie(user))
    await socket.connect()
    reader = Reader(socket)
    await reader.next()
    await socket.send_json_to({"type": "stop", "message": foreign_answer.pk})
    reply = await reader.next()
    assert reply == {"type": "error", "error": "There is no such answer in this conversation."}
    assert (await saved(foreign_answer)).status == "queued"
    await socket.disconnect()


async def test_logging_out_closes_that_sessions_sockets(user: User, converse: Converse, close_db: None) -> None:
    conversation, _ = await database_sync_to_async(converse)()
    client = Client()
    await database_sync_to_async(client.force_login)(user)
    socket = communicator(conversation.pk, client.cookies["sessionid"].value)
    assert (await socket.connect())[0]
    await socket.receive_from()  # the queued answer
    await database_sync_to_async(client.post)("/accounts/logout/")
    closed = await socket.receive_output(timeout=5)
    assert closed["type"] == "websocket.close"
    await socket.disconnect()


async def test_an_idle_socket_stays_open_and_still_receives(user: User, converse: Converse, close_db: None) -> None:
    """Longer than the channel layer's 5 s blocking read, with nothing to read."""
    conversation, answer = await database_sync_to_async(converse)()
    socket = communicator(conversation.pk, await session_cookie(user))
    await socket.connect()
    reader = Reader(socket)
    await reader.next()
    await asyncio.sleep(7)
    await database_sync_to_async(publish)(
        conversation_group(conversation_id=conversation.pk), {"type": "chat.queue", "message": answer.pk, "position": 3}
    )
    assert await reader.next() == {"type": "queue", "message": answer.pk, "position": 3}
    await socket.disconnect()


async def test_a_burst_of_pieces_is_joined_into_fewer_frames_without_losing_any(
    user: User, converse: Converse, close_db: None
) -> None:
    """Re-rendering a long answer for every piece would keep the event loop busy."""
    conversation, answer, socket, reader = await open_queued(user, converse)
    pieces = [f"Word {i} of a long answer with `code` and **bold** text. " for i in range(1, 301)]
    for seq, piece in enumerate(pieces, start=1):
        await database_sync_to_async(publish)(
            conversation_group(conversation_id=conversation.pk),
            {"type": "chat.delta", "message": answer.pk, "seq": seq, "delta": piece},
        )
    last = await reader.until(lambda f: f["type"] == "delta" and f["seq"] == len(pieces))
    deltas = [f for f in reader.frames if f["type"] == "delta"]
    assert len(deltas) < len(pieces) / 2
    assert reader.text[answer.pk] == "".join(pieces)
    assert last["html"] == render_markdown("".join(pieces))
    await socket.disconnect()
