"""Frames over the size limit, and floods, get an error frame and close the socket; nothing is done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from tests.processes import BASE_DIR
from tests.webapp.chat.conftest import Converse
from tests.webapp.sockets import opened, session_cookie
from webapp.accounts.models import User
from webapp.chat.models import Message
from webapp.core.sockets import FLOODED, TOO_LARGE, FrameGate
from webapp.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_db")]


async def reply(socket: WebsocketCommunicator) -> dict[str, Any]:
    return dict(json.loads(await socket.receive_from()))


async def closed_with(socket: WebsocketCommunicator) -> int:
    output = await socket.receive_output(timeout=5)
    assert output["type"] == "websocket.close"
    await socket.disconnect()
    return int(output["code"])


async def test_a_frame_over_the_limit_gets_an_error_and_closes_the_socket(
    user: User, converse: Converse, settings: Any
) -> None:
    settings.PARLEY_WS_MAX_FRAME_BYTES = 1000
    conversation, answer = await database_sync_to_async(converse)()
    socket = await opened(f"/ws/chat/{conversation.pk}/", await session_cookie(user))
    stop = json.dumps({"type": "stop", "message": answer.pk})
    await socket.send_to(text_data=stop + " " * (1000 - len(stop)))  # at the limit: read, and done
    assert (await reply(socket))["type"] != "error"  # the answer's status, stopped
    assert (await Message.objects.aget(pk=answer.pk)).status != "queued"

    conversation, answer = await database_sync_to_async(converse)()
    socket = await opened(f"/ws/chat/{conversation.pk}/", await session_cookie(user))
    stop = json.dumps({"type": "stop", "message": answer.pk})
    await socket.send_to(text_data=stop + "é" * ((1000 - len(stop)) // 2 + 1))  # one byte over, fewer characters
    error = await reply(socket)
    assert error["type"] == "error"
    assert "too large" in error["error"]
    assert "over the limit of 1000" in error["error"]
    assert await closed_with(socket) == TOO_LARGE
    assert (await Message.objects.aget(pk=answer.pk)).status == "queued"


async def test_a_flood_of_frames_gets_an_error_and_closes_the_socket(
    user: User, converse: Converse, settings: Any
) -> None:
    settings.PARLEY_WS_FRAMES_PER_10S = 5
    conversation, answer = await database_sync_to_async(converse)()
    socket = await opened(f"/ws/chat/{conversation.pk}/", await session_cookie(user))
    for _ in range(5):
        await socket.send_to(text_data=json.dumps({"type": "ping"}))
        assert "Unknown frame" in (await reply(socket))["error"]
    await socket.send_to(text_data=json.dumps({"type": "stop", "message": answer.pk}))
    error = await reply(socket)
    assert "Too many frames: at most 5 every 10 seconds" in error["error"]
    assert await closed_with(socket) == FLOODED
    assert (await Message.objects.aget(pk=answer.pk)).status == "queued"  # the sixth frame was not read


async def test_the_job_socket_has_the_same_limits(user: User, settings: Any) -> None:
    settings.PARLEY_WS_FRAMES_PER_10S = 3
    job = await Job.objects.acreate(owner=user, kind=Job.Kind.SENTIMENT)
    socket = await opened(f"/ws/jobs/{job.pk}/", await session_cookie(user))
    await socket.send_to(text_data="x" * 5000)
    assert "too large" in (await reply(socket))["error"]
    assert await closed_with(socket) == TOO_LARGE

    socket = await opened(f"/ws/jobs/{job.pk}/", await session_cookie(user))
    for _ in range(3):
        await socket.send_to(text_data="{}")
        assert "takes no frames" in (await reply(socket))["error"]
    await socket.send_to(text_data="{}")
    assert "Too many frames" in (await reply(socket))["error"]
    assert await closed_with(socket) == FLOODED


def test_the_flood_limit_counts_a_sliding_ten_seconds() -> None:
    now = [0.0]
    gate = FrameGate(max_bytes=100, per_window=3, clock=lambda: now[0])
    for moment in (0.0, 4.0, 9.0):
        now[0] = moment
        assert gate.refusal("{}", None) is None
    now[0] = 9.9  # a fourth within 10 s of the first
    assert gate.refusal("{}", None) is not None
    gate = FrameGate(max_bytes=100, per_window=3, clock=lambda: now[0])
    for moment in (0.0, 4.0, 9.0, 10.0, 14.5):  # never more than 3 in any 10 s
        now[0] = moment
        assert gate.refusal("{}", None) is None
    assert gate.refusal(None, b"x" * 101) is not None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PARLEY_WS_MAX_FRAME_BYTES", "lots", "PARLEY_WS_MAX_FRAME_BYTES='lots' is not an integer"),
        ("PARLEY_WS_MAX_FRAME_BYTES", "10", "PARLEY_WS_MAX_FRAME_BYTES=10 is below the minimum of 256"),
        ("PARLEY_WS_FRAMES_PER_10S", "0", "PARLEY_WS_FRAMES_PER_10S=0 is below the minimum of 1"),
        ("PARLEY_CHAT_MAX_FRAME_BYTES", "4096", "is now PARLEY_WS_MAX_FRAME_BYTES"),
    ],
)
def test_a_bad_limit_stops_the_process_with_one_clear_line(variable: str, value: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import webapp.settings"],
        env={**os.environ, variable: value},
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert message in result.stderr.strip().splitlines()[-1]
