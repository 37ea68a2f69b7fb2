"""Sending events to websockets through the channel layer, from synchronous code."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def publish(group: str, event: dict[str, Any]) -> None:
    """Best effort: the channel layer is the fast path, Postgres holds the truth."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:
        logger.warning("could not publish %s to %s", event.get("type"), group, exc_info=True)
