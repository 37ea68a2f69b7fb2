"""A real Celery worker on the real broker, and waiting on a condition rather than a time."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from tests.processes import BASE_DIR, process_env

EVERY_QUEUE = "reading,summaries,sentiment"


def start_celery(env: dict[str, str] | None = None, queues: str = EVERY_QUEUE) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "webapp.celery", "worker", "--pool", "solo", "--queues", queues,
         "--without-mingle", "--without-gossip", "--loglevel", "WARNING"],
        cwd=BASE_DIR, env=env or process_env(),
    )  # fmt: skip


def stop_celery(worker: subprocess.Popen[bytes], timeout: float = 30) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str = "the condition") -> Any:
    """The predicate's first true value, asked every 0.1 s; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
