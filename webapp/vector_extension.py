"""Whether the database can hold passages' vectors: the ``vector`` extension (pgvector).

The embedded PostgreSQL (pgserver) ships it; an operator's server needs it installed.
The run command checks before migrating, ``migrate`` before it changes anything (a
``pre_migrate`` receiver of the documents app), and the migration that creates the
extension checks again, each with the same message naming the fix.
"""

from __future__ import annotations

from typing import Any

MISSING = (
    "the PostgreSQL server has no pgvector extension, which Parley needs to keep documents' passages "
    "and their vectors. Install it on the database server (Debian/Ubuntu: apt install postgresql-NN-pgvector "
    "for your PostgreSQL version NN), then run "
    "`CREATE EXTENSION vector;` in the database as a superuser, or unset DATABASE_URL to use the embedded "
    "PostgreSQL, which has it."
)


def vector_extension_problem(cursor: Any) -> str | None:
    """What is wrong with the server's ``vector`` extension, or None when it can be used."""
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    return MISSING if cursor.fetchone() is None else None
