"""The site's websockets as a signed-in browser opens them: Channels' test communicator
against the real ASGI application, with the Origin and Host a page on the site sends
(the origin check refuses a handshake without them)."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from webapp.accounts.models import User
from webapp.asgi import application

ORIGIN = "http://localhost"


async def signed_in(user: User) -> Client:
    """A browser of its own (a session of its own) signed in as ``user``."""
    client = Client()
    await database_sync_to_async(client.force_login)(user)
    return client


def session_of(client: Client) -> str:
    return client.cookies["sessionid"].value


async def session_cookie(user: User) -> str:
    """A new session of ``user``, as its cookie's value."""
    return session_of(await signed_in(user))


def socket_to(path: str, session: str | None = None, *, origin: str = ORIGIN) -> WebsocketCommunicator:
    """A socket on ``path``, from a page of ``origin``, with the session cookie if given."""
    headers = [(b"origin", origin.encode()), (b"host", b"localhost")]
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def opened(path: str, session: str) -> WebsocketCommunicator:
    """A connected socket on ``path``, past its first frame (the saved state)."""
    socket = socket_to(path, session)
    assert (await socket.connect())[0]
    await socket.receive_from()
    return socket
