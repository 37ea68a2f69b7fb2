"""The Redis cache's connections, shared by every request of a process."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import redis

_shared_lock = threading.Lock()


class SharedConnectionPool(redis.ConnectionPool):
    """One pool per Redis address for the whole process.

    Django's Redis cache keeps its pool on the cache object, and under ASGI every request
    gets a cache object of its own: each request would open (and leave behind) a new
    connection for its rate-limit count. redis-py's pools are thread-safe and reopen after
    a fork, so one per address serves them all.
    """

    _shared: ClassVar[dict[tuple[str, str], SharedConnectionPool]] = {}

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> SharedConnectionPool:
        key = (url, repr(sorted(kwargs.items())))
        with _shared_lock:
            if key not in cls._shared:
                cls._shared[key] = super().from_url(url, **kwargs)
            return cls._shared[key]
