from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    # Rate counters live in the real Redis cache and would carry from one test to the next.
    cache.clear()
