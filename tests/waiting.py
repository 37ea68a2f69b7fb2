"""Waiting for a condition, never for a fixed time: a fast machine passes as soon as the
condition holds, a loaded one gets until the timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "", *, interval: float = 0.02) -> Any:
    """The predicate's first true value, asked every ``interval`` seconds; fails after
    ``timeout`` seconds, naming ``what`` it waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
