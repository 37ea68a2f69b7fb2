"""The Redis cache: its connections, shared by every request of a process, and its
answers while Redis is unreachable."""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

import redis
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

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


class ForgivingRedisCache(RedisCache):
    """Django's Redis cache, answering as an empty cache while Redis cannot be reached.

    The cache holds only rate-limit counts; a page must not fail because Redis is down.
    ``get`` gives the default, ``add`` and ``set`` store nothing, ``incr`` finds no key
    (django-ratelimit then counts nothing, and RATELIMIT_FAIL_OPEN lets the request by).
    Each failure is logged.
    """

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except redis.RedisError as error:
            _unreachable(error)
            return default

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        try:
            return bool(super().add(key, value, timeout, version))
        except redis.RedisError as error:
            _unreachable(error)
            return False

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        try:
            super().set(key, value, timeout, version)
        except redis.RedisError as error:
            _unreachable(error)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return int(super().incr(key, delta, version))
        except redis.RedisError as error:
            _unreachable(error)
            raise ValueError("the cache is unreachable") from error

    def delete(self, key: Any, version: int | None = None) -> bool:
        try:
            return bool(super().delete(key, version))
        except redis.RedisError as error:
            _unreachable(error)
            return False


def _unreachable(error: redis.RedisError) -> None:
    logger.warning("the cache (Redis) is unreachable: %s", error)
