"""Parley while its Redis is down: against the real web server and a real Celery worker,
both on a Redis of this test's own, which the test stops and starts again.

With Redis gone, pages and /healthz still answer and say what is degraded, a chat send
and an upload are saved (never a 500), and rate limits let requests through. When Redis
is back, the worker (which stayed up, retrying) reconnects and reads the upload that was
made while its message could not be sent.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.browser.conftest import _wait_for_sessions_to_end, _wait_until_serving
from tests.faults.test_streaming_exports import session_of
from tests.processes import BASE_DIR, free_port, process_env
from tests.waiting import wait_for
from tests.webapp.jobs.workers import start_celery, stop_celery
from webapp.accounts.models import User
from webapp.chat.models import Conversation, Message
from webapp.documents.models import Document
from webapp.jobs.models import Job
from webapp.launcher import EmbeddedRedis, start_redis

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class OwnRedis:
    data_dir: Path
    server: EmbeddedRedis

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()

    def start_again(self) -> None:
        self.server = start_redis(self.data_dir)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    # a short folder: the socket's path must stay the same across restarts (and short)
    data_dir = Path(tempfile.mkdtemp(prefix="parley-r-", dir="/tmp"))
    redis = OwnRedis(data_dir, start_redis(data_dir))
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def site(own_redis: OwnRedis) -> Iterator[str]:
    port = free_port()
    env = process_env(REDIS_URL=own_redis.url)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "webapp.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--lifespan", "off", "--no-access-log"],
        cwd=BASE_DIR, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        _wait_for_sessions_to_end()


def signed_in(base: str, user: User) -> requests.Session:
    browser = requests.Session()
    browser.cookies.set("sessionid", session_of(user))
    browser.get(f"{base}/documents/", timeout=30)  # for the CSRF cookie
    browser.headers.update({"X-CSRFToken": str(browser.cookies["csrftoken"]), "Origin": base, "Referer": f"{base}/"})
    return browser


def banner_shown(browser: requests.Session, base: str) -> requests.Response | None:
    page = browser.get(f"{base}/documents/", timeout=30)
    assert page.status_code == 200
    return page if "Parley cannot reach Redis" in page.text else None


def test_with_redis_down_pages_say_so_sends_and_uploads_are_kept_and_read_when_it_is_back(
    site: str, own_redis: OwnRedis, user: User
) -> None:
    browser = signed_in(site, user)
    conversation = Conversation.objects.create(owner=user, temperature=0)
    worker = start_celery(env=process_env(REDIS_URL=own_redis.url, PARLEY_JOB_RESEND_SECONDS="1"), queues="reading")
    try:
        own_redis.stop()

        health = requests.get(f"{site}/healthz", timeout=30)
        assert health.status_code == 503
        assert health.json()["database"] == "ok"
        assert health.json()["redis"].startswith("error")
        # pages look at Redis at most every few seconds: within that, each page says so
        page = wait_for(lambda: banner_shown(browser, site), 30, "the pages to say Redis is unreachable")
        assert page.status_code == 200

        sent = browser.post(
            f"{site}/chat/{conversation.pk}/send", data={"content": "Are you there?"}, headers={"HX-Request": "true"}
        )
        assert sent.status_code == 200, sent.text[:500]
        question = Message.objects.get(conversation=conversation, role="user")
        assert question.content == "Are you there?"
        assert Message.objects.get(conversation=conversation, role="assistant").status == Message.Status.QUEUED

        uploaded = browser.post(
            f"{site}/documents/upload", files={"files": ("note.txt", b"Read me when the queue is back.")}
        )
        assert uploaded.status_code == 200  # the documents page, after the redirect
        assert "its text is being read" in uploaded.text
        document = Document.objects.get(owner=user, name="note.txt")
        job = Job.objects.get(document=document)
        assert job.state == Job.State.QUEUED
        assert job.sent_at is None  # its message could not reach the broker

        own_redis.start_again()
        wait_for(
            lambda: Document.objects.filter(pk=document.pk, status=Document.Status.READY).exists(),
            90,
            "the upload made while Redis was down to be read",
        )
        wait_for(lambda: not banner_shown(browser, site), 30, "the pages to stop saying Redis is unreachable")
        assert requests.get(f"{site}/healthz", timeout=30).status_code == 200
    finally:
        stop_celery(worker)
