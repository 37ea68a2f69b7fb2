"""Answers are rendered off the event loop: a slow render holds up no other socket."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async

from tests.webapp.chat.conftest import Converse
from tests.webapp.sockets import opened, session_cookie
from webapp.accounts.models import User
from webapp.chat import renders
from webapp.chat.events import conversation_group
from webapp.core.events import publish
from webapp.core.rendering import render_markdown

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_db")]

# past renders.INLINE_CHARS, so it is rendered in a thread (a text this long could be slow)
SLOW = "a piece that takes long to render. " * 10


async def test_a_slow_render_holds_up_no_other_socket(
    user: User, converse: Converse, monkeypatch: pytest.MonkeyPatch
) -> None:
    render_threads: list[int] = []
    rendering, release = threading.Event(), threading.Event()
    released: list[bool] = []  # per slow render: let go by the test (True) or timed out

    def slow_render(text: str) -> str:
        if SLOW in text:
            render_threads.append(threading.get_ident())
            rendering.set()
            # blocks whichever thread renders until the test lets it go; on the event loop's
            # thread the test could not run to let it go, and the wait would time out
            released.append(release.wait(timeout=10))
        return render_markdown(text)

    monkeypatch.setattr(renders, "render_markdown", slow_render)
    (slow_conversation, slow_answer), (other_conversation, other_answer) = [
        await database_sync_to_async(converse)() for _ in range(2)
    ]
    slow_socket = await opened(f"/ws/chat/{slow_conversation.pk}/", await session_cookie(user))
    other_socket = await opened(f"/ws/chat/{other_conversation.pk}/", await session_cookie(user))

    await database_sync_to_async(publish)(
        conversation_group(conversation_id=slow_conversation.pk),
        {"type": "chat.delta", "message": slow_answer.pk, "seq": 1, "delta": SLOW},
    )
    assert await asyncio.to_thread(rendering.wait, 10), "the slow render never started"
    await database_sync_to_async(publish)(
        conversation_group(conversation_id=other_conversation.pk),
        {"type": "chat.delta", "message": other_answer.pk, "seq": 1, "delta": "Hello"},
    )
    # the slow render is still held: on the event loop it would hold this frame back too
    other: dict[str, Any] = json.loads(await other_socket.receive_from(timeout=5))
    assert (other["delta"], other["html"]) == ("Hello", "<p>Hello</p>\n")
    release.set()

    slow: dict[str, Any] = json.loads(await slow_socket.receive_from(timeout=5))
    assert (slow["from_seq"], slow["seq"], slow["html"]) == (1, 1, render_markdown(SLOW))
    assert released == [True], "the slow render held the event loop"
    assert render_threads
    assert threading.get_ident() not in render_threads  # never on the event loop's thread
    await slow_socket.disconnect()
    await other_socket.disconnect()


async def test_pieces_that_arrive_during_a_render_go_in_the_next_frame(
    user: User, converse: Converse, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow_render(text: str) -> str:
        time.sleep(0.05)
        return render_markdown(text)

    monkeypatch.setattr(renders, "render_markdown", slow_render)
    conversation, answer = await database_sync_to_async(converse)()
    socket = await opened(f"/ws/chat/{conversation.pk}/", await session_cookie(user))
    pieces = [f"piece {seq} " for seq in range(1, 41)]
    for seq, piece in enumerate(pieces, start=1):
        await database_sync_to_async(publish)(
            conversation_group(conversation_id=conversation.pk),
            {"type": "chat.delta", "message": answer.pk, "seq": seq, "delta": piece},
        )
    text, expected_from = "", 1
    async with asyncio.timeout(20):
        while expected_from <= len(pieces):
            frame = json.loads(await socket.receive_from(timeout=10))
            assert frame["from_seq"] == expected_from, "a gap or a repeat"
            text += frame["delta"]
            assert frame["html"] == render_markdown(text)
            expected_from = frame["seq"] + 1
    assert text == "".join(pieces)
    await socket.disconnect()
