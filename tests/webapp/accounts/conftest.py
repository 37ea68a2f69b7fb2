from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.webapp.chat.conftest import converse, start_worker  # noqa: F401  (the fixtures, for the usage tests)


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    # Rate counters live in the real Redis cache and would carry from one test to the next.
    cache.clear()
