"""For benchmarks that need Django: their own embedded Postgres and Redis under var/bench
(never the servers of DATABASE_URL / REDIS_URL: they fill and empty tables)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))


@contextmanager
def embedded_django(**environment: str) -> Iterator[None]:
    """Django set up on fresh embedded servers; ``environment`` holds defaults for settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    for name, value in environment.items():
        os.environ.setdefault(name, value)
    from webapp.launcher import services

    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    with services(PROJECT_DIR / "var" / "bench", "parley_bench") as env:
        os.environ.update(env)
        import django

        django.setup()
        yield


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
