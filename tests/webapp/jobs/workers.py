"""A real Celery worker on the real broker."""

from __future__ import annotations

import subprocess
import sys

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
