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

Other close codes the consumers use: 4401 (not signed in, at the handshake), 4403
(someone else's, or refused by the origin check), 4404 (no such object), and the flood
and size limits below.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

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
