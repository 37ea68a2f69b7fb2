"""Liveness of the services Parley depends on, for /healthz and the launcher."""

from __future__ import annotations

from typing import TypedDict

import redis
from django.conf import settings
from django.db import connection
from django.db.utils import Error as DatabaseError


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
    redis_status = "ok"
    try:
        client = redis.Redis.from_url(settings.REDIS_URLS.cache, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
    except redis.RedisError as error:
        redis_status = f"error: {error.__class__.__name__}"
    healthy = database == "ok" and redis_status == "ok"
    return healthy, {"database": database, "redis": redis_status}
