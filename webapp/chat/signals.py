"""Logging out closes the websockets of that browser session."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest

from webapp.chat.events import session_closed, session_group
from webapp.core.events import publish


@receiver(user_logged_out)
def close_sockets_on_logout(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        publish(session_group(session_key=session_key), session_closed())
