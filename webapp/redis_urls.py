"""One ``REDIS_URL`` becomes separate Redis databases for each user of Redis.

The channel layer, the Celery broker and the cache must not share a database: a
``FLUSHDB`` of the cache would otherwise drop queued tasks. Each client library spells
unix sockets differently (kombu rejects ``unix://``), so the URLs are derived here.
A refused URL is named in the error with its password masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from webapp.masking import masked


@dataclass(frozen=True)
class RedisUrls:
    channels: str
    broker: str
    cache: str


CHANNELS_DB = 0
BROKER_DB = 1
CACHE_DB = 2


class InvalidRedisUrl(ValueError):
    pass


def derive_redis_urls(redis_url: str) -> RedisUrls:
    parts = urlsplit(redis_url)
    if parts.scheme in ("unix", "redis+socket"):
        path = parts.path
        if not path:
            raise InvalidRedisUrl(f"REDIS_URL={masked(redis_url)!r} names no socket path.")
        return RedisUrls(
            channels=f"unix://{path}?db={CHANNELS_DB}",
            broker=f"redis+socket://{path}?virtual_host={BROKER_DB}",
            cache=f"unix://{path}?db={CACHE_DB}",
        )
    if parts.scheme in ("redis", "rediss"):
        if not parts.hostname:
            raise InvalidRedisUrl(f"REDIS_URL={masked(redis_url)!r} names no host.")
        base = f"{parts.scheme}://{parts.netloc}"
        return RedisUrls(channels=f"{base}/{CHANNELS_DB}", broker=f"{base}/{BROKER_DB}", cache=f"{base}/{CACHE_DB}")
    raise InvalidRedisUrl(
        f"REDIS_URL={masked(redis_url)!r} has an unknown scheme; use redis://host:port, rediss://… or unix:///path/redis.sock."
    )
