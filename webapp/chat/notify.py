"""Wake-ups for the generation workers, over Postgres ``LISTEN``/``NOTIFY``.

A payload is ``queued:<answer id>`` (claim now rather than at the next poll) or
``stop:<answer id>`` (cancel it within a step). Postgres delivers a notification when the
transaction that sent it commits, and not at all if it rolls back, so a wake-up never
arrives before the row it is about. Workers also poll: a missed one only costs time.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.db import connection

NOTIFY_CHANNEL = "parley_chat"


def notify_worker(*, payload: str) -> None:
    """Wake the generation workers. Postgres delivers it when the transaction commits."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, payload])


def worker_notifications() -> psycopg.Connection[Any]:
    """A connection of its own (not Django's, which a request or a transaction may hold),
    in autocommit, listening to what ``notify_worker`` sends."""
    # Django's own cursor class and adapters are not wanted on this raw connection.
    params = {
        key: value
        for key, value in connection.get_connection_params().items()
        if key not in ("cursor_factory", "context", "prepare_threshold")
    }
    listener = psycopg.connect(**params, autocommit=True)
    listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
    return listener
