"""What every websocket of a signed-in user shares: the groups that close it, and the codes.

Every socket joins two groups when it is accepted (``account_groups``): its browser
session's and its user's. A ``session.closed`` frame sent to either closes the socket with
the code the frame names (``webapp/accounts/signals.py`` sends them):

- logging out closes the sockets of that browser session with ``SIGNED_OUT`` (4403);
- deactivating or deleting the account closes all of its sockets with ``SIGNED_OUT``;
- a new password (changed, reset, or set by staff) closes all of them with
  ``CREDENTIALS_CHANGED`` (4001). Django keeps signed in only the session that changed
  the password (it moves to a new session key, so the socket cannot tell it from the
  others), so the page reconnects on this code and the handshake checks its session
  again: the browser that changed the password is back at once, every other one is
  refused as signed out (4401).

Frames from a page pass a ``FrameGate`` first: one over ``PARLEY_WS_MAX_FRAME_BYTES`` or
past ``PARLEY_WS_FRAMES_PER_10S`` gets an error frame saying so, and the socket is closed
(``TOO_LARGE``, ``FLOODED``); nothing the frame asked for is done.

Other close codes the consumers use: 4401 (not signed in, at the handshake), 4403
(someone else's, or refused by the origin check), 4404 (no such object), and the flood
and size limits below.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

CREDENTIALS_CHANGED = 4001
SIGNED_OUT = 4403
FLOODED = 4008  # more frames than PARLEY_WS_FRAMES_PER_10S
TOO_LARGE = 4009  # a frame over PARLEY_WS_MAX_FRAME_BYTES


def session_group(*, session_key: str) -> str:
    """The group every socket of one browser session listens to."""
    return f"sockets.session.{session_key}"


def user_group(*, user_id: int) -> str:
    """The group every socket of one user listens to, whatever the session."""
    return f"sockets.user.{user_id}"


class SessionClosedEvent(TypedDict):
    """The session or account the socket was opened with ended: close with ``code``."""

    type: Literal["session.closed"]
    code: int


def session_closed(*, code: int) -> SessionClosedEvent:
    return {"type": "session.closed", "code": code}


def account_groups(scope: dict[str, Any]) -> list[str]:
    """The groups a socket of the signed-in user in ``scope`` joins."""
    groups = [user_group(user_id=scope["user"].pk)]
    session_key = scope["session"].session_key
    if session_key:
        groups.append(session_group(session_key=session_key))
    return groups


FLOOD_WINDOW_SECONDS = 10.0


@dataclass(frozen=True)
class Refusal:
    error: str
    code: int


class FrameGate:
    """The limits on frames one socket may send: their size, and how many in 10 seconds.

    The count is over a sliding window, every frame counted, refused ones too: a socket
    whose ``limit + 1``-th frame comes within 10 s of the first of them is refused.
    """

    def __init__(
        self,
        *,
        max_bytes: int | None = None,
        per_window: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = settings.PARLEY_WS_MAX_FRAME_BYTES if max_bytes is None else max_bytes
        self.per_window = settings.PARLEY_WS_FRAMES_PER_10S if per_window is None else per_window
        self.clock = clock
        self.arrivals: deque[float] = deque(maxlen=self.per_window)

    def refusal(self, text_data: str | None, bytes_data: bytes | None) -> Refusal | None:
        now = self.clock()
        if len(self.arrivals) == self.per_window and now - self.arrivals[0] < FLOOD_WINDOW_SECONDS:
            return Refusal(
                f"Too many frames: at most {self.per_window} every 10 seconds. This socket is closed; "
                "reload the page to reconnect.",
                FLOODED,
            )
        self.arrivals.append(now)
        # A text frame's size is its UTF-8 bytes, as the server counts it; a longer text
        # than the limit cannot be within it, so only a shorter one is encoded.
        size = len(bytes_data) if bytes_data is not None else len(text_data or "")
        if size <= self.max_bytes and text_data is not None:
            size = len(text_data.encode())
        if size > self.max_bytes:
            return Refusal(
                f"That frame is too large: {size} bytes, over the limit of {self.max_bytes}. "
                "Nothing was done, and this socket is closed.",
                TOO_LARGE,
            )
        return None


class AccountSocket(AsyncWebsocketConsumer):
    """The part every consumer of a signed-in user's socket shares: the frame gate, joining
    its own groups and the account's (``account_groups``) before it is accepted, leaving
    them when it closes, and closing on a ``session.closed`` frame."""

    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        self.gate = FrameGate()

    async def accept_joining(self, groups: list[str]) -> None:
        """Join ``groups`` and the account's, then accept: joined before the page is sent
        any saved state, so no change falls between the two."""
        self.groups_joined = [*groups, *account_groups(self.scope)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def refused(self, text_data: str | None, bytes_data: bytes | None) -> bool:
        """Whether the frame is over a limit; if so the page is told and the socket closed."""
        refusal = self.gate.refusal(text_data, bytes_data)
        if refusal is None:
            return False
        await self.send_error(refusal.error)
        await self.close(code=refusal.code)
        return True

    async def send_error(self, text: str) -> None:
        await self.send_frame({"type": "error", "error": text})

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame))

    async def session_closed(self, event: SessionClosedEvent) -> None:
        await self.close(code=event["code"])
