"""Liveness of the services Parley depends on, for /healthz and the launcher, and readiness
for /readyz: the database migrated, Redis answering, and what the apps add
(``readiness_check``: chat's, a generation worker alive for each configured model)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypedDict

import redis
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
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


# name -> a check answering (ready, what it found); registered by the apps' ready()
ReadinessCheck = Callable[[], tuple[bool, str]]
_readiness_checks: dict[str, ReadinessCheck] = {}
# Once every migration is applied it stays so for the life of the process (a new release
# is a new process), so the migration graph is read until then only.
_migrated = False


def readiness_check(name: str, check: ReadinessCheck) -> None:
    _readiness_checks[name] = check


def _migrations_status() -> str:
    global _migrated
    if not _migrated:
        executor = MigrationExecutor(connection)
        waiting = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if waiting:
            return f"{len(waiting)} migration{'s' if len(waiting) != 1 else ''} not applied"
        _migrated = True
    return "ok"


def check_ready() -> tuple[bool, dict[str, str]]:
    """Whether this installation can serve a user now, and each part's state: a process
    behind a load balancer gets traffic only then."""
    healthy, services = check_services()
    report = {"database": services["database"], "redis": services["redis"]}
    ready = healthy
    if services["database"] == "ok":
        try:
            report["migrations"] = _migrations_status()
            for name, check in _readiness_checks.items():
                passed, found = check()
                report[name] = ("ok: " if passed else "not ready: ") + found
                ready = ready and passed
        except DatabaseError as error:
            report["migrations"] = f"error: {error.__class__.__name__}"
            connection.close()
        ready = ready and report.get("migrations") == "ok"
    return ready, report
