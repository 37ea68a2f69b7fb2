"""The web server as the Procfile starts it refuses a websocket frame over the limit before
reading it, and a page of another origin before its handshake is answered.

uvicorn runs the Procfile's own ``web`` command (through a shell, as honcho runs it)
against the test database, and a real websocket client talks to it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test import Client
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from tests.processes import procfile_web
from webapp.accounts.models import User
from webapp.chat import services
from webapp.chat.models import Conversation

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 1024
MESSAGE_TOO_BIG = 1009  # the websocket protocol's own close code


@pytest.fixture
def web_server() -> Iterator[str]:
    with procfile_web(PARLEY_WS_MAX_FRAME_BYTES=str(LIMIT)) as url:
        yield url


async def until_closed(socket: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """The frames the server sends until it closes the socket, and its close code."""
    frames = []
    async with asyncio.timeout(10):
        while True:
            try:
                frames.append(json.loads(await socket.recv(decode=True)))
            except ConnectionClosed as closed:
                return frames, closed.rcvd.code if closed.rcvd else None


async def test_the_server_closes_a_socket_on_a_frame_over_the_limit_without_reading_it(
    web_server: str, user: User
) -> None:
    conversation = await Conversation.objects.acreate(owner=user)
    answer = await database_sync_to_async(services.message_send)(conversation=conversation, content="Hello")
    client = Client()
    await database_sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    uri = f"ws://{web_server}/ws/chat/{conversation.pk}/"
    async with connect(uri, origin=Origin(f"http://{web_server}"), additional_headers={"Cookie": cookie}) as socket:
        assert json.loads(await socket.recv(decode=True))["type"] == "answer"
        await socket.send(json.dumps({"type": "stop", "message": answer.pk}) + " " * LIMIT)
        frames, code = await until_closed(socket)
    assert [frame for frame in frames if frame["type"] == "error"] == [], "the consumer read the frame"
    assert code == MESSAGE_TOO_BIG
    await answer.arefresh_from_db()
    assert answer.status == "queued"

    host, port = web_server.split(":")
    other_port = f"http://{host}:{int(port) + 1}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(uri, origin=Origin(other_port), additional_headers={"Cookie": cookie}):
            pass
    assert refused.value.response.status_code == 403
    await database_sync_to_async(lambda: connection.close())()
