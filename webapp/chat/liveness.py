"""Which generation workers are alive, told by the Postgres advisory locks they hold.

A worker holds, on its notification connection and for as long as it lives, an exclusive
lock on its own key (so the reaper can tell a dead worker's answers) and a shared lock on
``WORKERS_KEY`` (so a page can tell whether any worker is running at all). Postgres frees
both when the session ends, however the process ends.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.db import connection

# Two int4 keys (pg_advisory_lock(int, int)) live apart from the bigint keys of single
# workers and jobs; the first is "parley" in ASCII, to be recognisable in pg_locks.
WORKERS_KEY = (0x70617273, 1)


def hold(listener: psycopg.Connection[Any], *, key: int) -> None:
    """Take a worker's locks on its own connection: its own key, and its share of WORKERS_KEY."""
    listener.execute("SELECT pg_advisory_lock(%s)", [key])
    listener.execute("SELECT pg_advisory_lock_shared(%s, %s)", list(WORKERS_KEY))


def workers_alive() -> int:
    """How many generation workers hold their share of WORKERS_KEY now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND mode = 'ShareLock'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 2",
            list(WORKERS_KEY),
        )
        (count,) = cursor.fetchone()
    return int(count)
