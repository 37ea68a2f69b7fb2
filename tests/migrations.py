"""Testing a migration with rows present: the database taken back, filled through the models
of then, and brought forward again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps

Target = tuple[str, str | None]  # an app and the migration to stand at; None for none of the app's


@contextlib.contextmanager
def migrated_back(*targets: Target) -> Iterator[StateApps]:
    """Take the database back to ``targets`` and yield the models as they are there.

    The models are those of every migration still applied after going back, so an app not
    taken back (accounts, admin) has its models of now, and an app whose later migrations
    depended on one taken back (chat's, on a documents migration) has them taken back too:
    the state is the database's, whichever apps going back reached. The database is
    migrated forward to the latest when the block ends, after a failure too, so the next
    test finds the database it expects (a block may migrate forward part of the way first).
    """
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(list(targets))
        applied = MigrationExecutor(connection).loader.applied_migrations
        yield executor.loader.project_state(list(applied), at_end=True).apps
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
        # content types renamed or made by the migrations are read again, not from the cache
        ContentType.objects.clear_cache()
