"""Postgres advisory locks: held by a session, freed when it ends, so also a liveness signal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection


@contextlib.contextmanager
def advisory_lock(*key: int) -> Iterator[bool]:
    """Try the lock (one bigint key, or two int keys) for the block; yields whether it was free."""
    placeholders = ", ".join(["%s"] * len(key))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({placeholders})", list(key))
        (locked,) = cursor.fetchone()
    try:
        yield bool(locked)
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock({placeholders})", list(key))
