"""Whether any generation worker is alive, from Postgres's lock table.

Every worker holds a shared advisory lock on one well-known key on its notification
connection for as long as it lives (beside its own key, which the reaper reads). Postgres
drops the lock when the connection ends, however the worker ended, so "someone holds the
shared key" is exactly "some worker is alive" with nothing to clean up. The two-number
form of the key (namespace, 1) keeps it apart from the one-number keys of answers and jobs.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.db import connection

# pg_advisory_lock_shared(int4, int4): classid and objid in pg_locks, with objsubid = 2
WORKERS_NAMESPACE = 0x50524C59  # "PRLY"
WORKERS_KEY = 1


def announce(listener: psycopg.Connection[Any]) -> None:
    """Held until ``listener`` closes: this worker is alive."""
    listener.execute("SELECT pg_advisory_lock_shared(%s, %s)", [WORKERS_NAMESPACE, WORKERS_KEY])


def generation_workers_alive() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 2)",
            [WORKERS_NAMESPACE, WORKERS_KEY],
        )
        row = cursor.fetchone()
    return bool(row and row[0])
