"""Fixtures of the web tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from channels.db import database_sync_to_async
from django.db import connection


@pytest.fixture
async def close_db() -> AsyncIterator[None]:
    """After an async test: close the connection that database_sync_to_async's thread
    opened (looked up in that thread), or the test database cannot be dropped."""
    yield
    await database_sync_to_async(lambda: connection.close())()
