"""The one way events reach websockets: a typed payload sent to a channel-layer group.

Each feature app declares its frames as ``TypedDict``s and its group names next to them
(``webapp/chat/events.py``, ``webapp/jobs/events.py``); this module only sends. Sending
is best effort everywhere: the channel layer is the fast path, Postgres holds the truth,
so a failure is logged and never raised into the write that caused it.

``publish`` is for request handlers and tasks (one event, from synchronous code).
``ThreadPublisher`` is for a long-lived process that publishes from worker threads many
times a second (the generation worker): it keeps one event loop in a thread of its own
instead of starting one per call, and sends a batch of events concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

# A frame as it goes on the layer: any of the apps' TypedDicts (all have a "type").
Event = Mapping[str, Any]


def publish(group: str, event: Event) -> None:
    """Send one event to ``group`` from synchronous code; a failure is logged."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, dict(event))
    except Exception:
        logger.warning("could not publish %s to %s", event.get("type"), group, exc_info=True)


class ThreadPublisher:
    """Sends events from any thread through one event loop that lives as long as it does."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="publisher", daemon=True)
        self._thread.start()

    def publish(self, group: str, event: Event) -> None:
        self.publish_many([(group, event)])

    def publish_many(self, events: Sequence[tuple[str, Event]]) -> None:
        """Send them concurrently and wait; a failure is logged, never raised."""
        if self.layer is None or not events:
            return
        layer = self.layer

        async def send_all() -> list[Any]:
            return await asyncio.gather(
                *(layer.group_send(group, dict(event)) for group, event in events), return_exceptions=True
            )

        try:
            results = asyncio.run_coroutine_threadsafe(send_all(), self.loop).result(timeout=5)
        except Exception:
            logger.warning("could not publish %d events", len(events), exc_info=True)
            return
        for result in results:
            if isinstance(result, BaseException):
                logger.warning("could not publish an event: %s", result)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
