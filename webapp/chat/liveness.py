"""Which generation workers are alive, and for which models, told by the Postgres advisory
locks they hold.

A worker holds, on its notification connection and for as long as it lives, an exclusive
lock on its own key (so the reaper can tell a dead worker's answers) and a shared lock on
its model's key, ``(WORKERS_CLASS, model_key(model))`` (so a page can tell whether any
worker serves that model). Postgres frees both when the session ends, however the process
ends.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import psycopg
from django.db import connection

# The first of two int4 keys (pg_advisory_lock(int, int)), apart from the bigint keys of
# single workers and jobs: "pars" in ASCII, to be recognisable in pg_locks.
WORKERS_CLASS = 0x70617273

_ALIVE = (
    "SELECT objid, count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND mode = 'ShareLock'"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND classid = %s AND objsubid = 2"
)


def model_key(model: str) -> int:
    """The second int4 key of ``model``'s workers: its name's CRC-32, kept non-negative
    (names are few, so two of one installation sharing a key is not a worry)."""
    return zlib.crc32(model.encode()) & 0x7FFFFFFF


def hold(listener: psycopg.Connection[Any], *, key: int, model: str) -> None:
    """Take a worker's locks on its own connection: its own key, and its share of its model's."""
    listener.execute("SELECT pg_advisory_lock(%s)", [key])
    listener.execute("SELECT pg_advisory_lock_shared(%s, %s)", [WORKERS_CLASS, model_key(model)])


def workers_alive(*, model: str | None = None) -> int:
    """How many generation workers are alive: those serving ``model``, or all of them."""
    query, arguments = _ALIVE, [WORKERS_CLASS]
    if model is not None:
        query, arguments = f"{query} AND objid = %s", [WORKERS_CLASS, model_key(model)]
    with connection.cursor() as cursor:
        cursor.execute(f"{query} GROUP BY objid", arguments)
        return sum(int(count) for _, count in cursor.fetchall())


def workers_per_model(models: Iterable[str]) -> dict[str, int]:
    """How many workers serve each of ``models``, in one look at pg_locks."""
    with connection.cursor() as cursor:
        cursor.execute(f"{_ALIVE} GROUP BY objid", [WORKERS_CLASS])
        counts = {int(objid): int(count) for objid, count in cursor.fetchall()}
    return {model: counts.get(model_key(model), 0) for model in models}
