"""Liveness of the services Parley depends on, for /healthz and the launcher."""

from __future__ import annotations

import time
from typing import TypedDict

import redis
from django.conf import settings
from django.db import connection
from django.db.utils import Error as DatabaseError
from django.http import HttpRequest


class HealthReport(TypedDict):
    database: str
    redis: str


def check_services() -> tuple[bool, HealthReport]:
    database = "ok"
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        database = f"error: {error.__class__.__name__}"
        connection.close()
    redis_status = _redis_status(timeout=2)
    healthy = database == "ok" and redis_status == "ok"
    return healthy, {"database": database, "redis": redis_status}


def _redis_status(*, timeout: float) -> str:
    try:
        client = redis.Redis.from_url(settings.REDIS_URLS.cache, socket_timeout=timeout, socket_connect_timeout=timeout)
        client.ping()
    except redis.RedisError as error:
        return f"error: {error.__class__.__name__}"
    return "ok"


# Pages look at most this often; between looks they show the last answer.
REDIS_LOOK_SECONDS = 5.0
_redis_seen: tuple[float, bool] = (-REDIS_LOOK_SECONDS, True)


def degraded_services(request: HttpRequest) -> dict[str, bool]:
    """For every page: whether Redis is unreachable, so the page can say what that pauses."""
    global _redis_seen
    seen_at, reachable = _redis_seen
    if time.monotonic() - seen_at >= REDIS_LOOK_SECONDS:
        reachable = _redis_status(timeout=0.5) == "ok"
        _redis_seen = (time.monotonic(), reachable)
    return {"redis_unreachable": not reachable}
